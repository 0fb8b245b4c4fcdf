"""The runner every tool builds: mmengine's ``Runner``, made safe and exact on
GPUs (DESIGN.md, device rules).

* ``resume`` reads the checkpoint onto the CPU (mmengine reads it onto the
  GPU): the RNG states must be CPU byte tensors, and the optimizer's step
  counters stay on the CPU, where a non-capturable AdamW reads them without a
  host-device synchronisation (one per parameter group per step otherwise).
  Everything else is copied to where its parameter lives by the loaders.
* ``setup_env`` applies ``env_cfg.tf32`` (TF32 matrix products and
  convolutions on Ampere and later; default on, see :func:`set_tf32`).
* ``register_hooks`` adds :class:`PseudoLabelMonitorHook` unless the config
  names one (it acts only on a stage with pseudo-label monitoring on, so no
  config needs to list it and no stage's config changes).
* ``set_randomness`` seeds every rank differently (``randomness.
  seed_per_rank``, default on) and makes ``deterministic=True`` run on GPUs:
  operations without a deterministic CUDA kernel (the bilinear upsampling
  backward) warn instead of raising, and cuBLAS gets the workspace setting
  it needs.
"""
import os
from typing import Iterable

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, set_random_seed

from .monitor_hook import PseudoLabelMonitorHook

#: cuBLAS' setting for reproducible results (CUDA docs, "Results
#: reproducibility"); read when cuBLAS starts, so set before the first product
CUBLAS_WORKSPACE = ':4096:8'


def _tf32_knobs():
    """torch >= 2.9's per-backend ``fp32_precision`` settings (cuBLAS
    products, cuDNN convolutions and RNNs), or None on older torch. Once
    these are used, reading the legacy ``allow_tf32`` flags raises, so only
    one API may be used in a process: the new one where it exists."""
    backends = torch.backends
    knobs = [getattr(backends.cuda, 'matmul', None),
             getattr(backends.cudnn, 'conv', None),
             getattr(backends.cudnn, 'rnn', None)]
    if all(hasattr(k, 'fp32_precision') for k in knobs):
        return knobs
    return None


def set_tf32(enabled: bool) -> None:
    """TF32 for fp32 matrix products and convolutions on CUDA (Ampere and
    later; no effect on CPUs or older GPUs).

    torch enables it for convolutions and, since 1.12, not for matrix
    products; the original DDB ran on torch 1.8, which used TF32 for both.
    ``True`` restores that and makes fp32 transformer training several times
    faster; ``False`` gives full fp32 products and convolutions."""
    knobs = _tf32_knobs()
    if knobs is None:
        torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
        torch.backends.cudnn.allow_tf32 = bool(enabled)
        return
    for knob in knobs:
        knob.fp32_precision = 'tf32' if enabled else 'ieee'


def tf32_enabled() -> bool:
    """Whether fp32 matrix products on CUDA may use TF32 (read with the same
    API :func:`set_tf32` writes with)."""
    knobs = _tf32_knobs()
    if knobs is None:
        return bool(torch.backends.cuda.matmul.allow_tf32)
    return knobs[0].fp32_precision == 'tf32'


def optimizers_of(optim_wrapper) -> Iterable[torch.optim.Optimizer]:
    """The optimizers of an ``OptimWrapper`` or ``OptimWrapperDict``."""
    wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
    for wrapper in (wrappers.values() if wrappers else [optim_wrapper]):
        optimizer = getattr(wrapper, 'optimizer', None)
        if optimizer is not None:
            yield optimizer


def step_counters_to_cpu(optimizer: torch.optim.Optimizer) -> int:
    """Move the ``step`` tensors of ``optimizer`` to the CPU, except those of
    fused or capturable groups (which keep them on the device by design).
    Returns how many were moved."""
    moved = 0
    for group in optimizer.param_groups:
        if group.get('fused') or group.get('capturable'):
            continue
        for param in group['params']:
            state = optimizer.state.get(param) or {}
            step = state.get('step')
            if isinstance(step, torch.Tensor) and step.device.type != 'cpu':
                state['step'] = step.cpu()
                moved += 1
    return moved


@RUNNERS.register_module()
class DDBRunner(Runner):
    """mmengine's ``Runner`` with the GPU fixes of the module docstring."""

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location='cpu') -> None:
        super().resume(filename, resume_optimizer, resume_param_scheduler,
                       map_location=map_location)
        for optimizer in optimizers_of(self.optim_wrapper):
            step_counters_to_cpu(optimizer)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(h, PseudoLabelMonitorHook)
                   for h in self._hooks):
            self.register_hook(PseudoLabelMonitorHook())

    def setup_env(self, env_cfg: dict) -> None:
        super().setup_env(env_cfg)
        set_tf32(env_cfg.get('tf32', True))

    def set_randomness(self, seed, diff_rank_seed: bool = False,
                       deterministic: bool = False,
                       seed_per_rank: bool = True) -> None:
        """mmengine's seeding, then, with ``seed_per_rank`` (default) on
        several ranks, each rank's ``random`` / numpy / torch generators
        re-seeded with ``seed + rank``: the ranks cut other boxes, pick other
        classes, jitter, blur and drop out differently, as the original's
        per-rank data workers did. The samplers keep the common seed (the
        ranks must agree on the partition of the data), and one process is
        seeded exactly as before. mmengine's own ``diff_rank_seed`` would
        instead give the samplers a random seed drawn on rank 0, which
        changes the data order even of a single process."""
        if deterministic:
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE)
        super().set_randomness(seed, diff_rank_seed, deterministic)
        if seed_per_rank and not diff_rank_seed and get_world_size() > 1:
            set_random_seed(self._seed + get_rank())
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
