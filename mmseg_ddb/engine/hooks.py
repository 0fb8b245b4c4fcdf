"""Hooks that make a resumed run continue exactly where it stopped."""
import math
import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from ..errors import DDBError


class NonFiniteLossError(DDBError, RuntimeError):
    """Training produced a NaN or infinite loss."""


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the torch RNG states in every checkpoint and restores them on
    resume, right before the first resumed iteration.

    mmengine re-seeds on resume and replays the data loader up to the resumed
    iteration, which reproduces the data-side random streams (numpy / random
    in the workers, the sampler). The model-side stream (dropout, bridging
    masks, augmentation of the mixed image) lives in torch's global generator,
    whose state at the checkpoint is what this hook carries over.
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(cpu=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state['cpu'])
        if 'cuda' in state and torch.cuda.is_available():
            cuda = state['cuda']
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)


def grads_are_finite(optimizer) -> bool:
    """Whether every gradient of ``optimizer`` is finite (one device
    synchronisation: a NaN / Inf anywhere makes its tensor's norm
    non-finite)."""
    grads = [p.grad for group in optimizer.param_groups
             for p in group['params'] if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)
    return bool(torch.isfinite(torch.stack(norms)).all())


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Guards training against non-finite losses and gradients.

    ``mode='stop'`` (default): the first non-finite loss stops training,
    naming the iteration, the loss terms and the last good checkpoint (which
    the atomic writes of :mod:`mmseg_ddb.compat` guarantee is complete), so a
    diverged run is not silently trained on for hours. The check reads the
    losses mmengine already moved to the host for logging, so it adds no
    device synchronisation.

    ``mode='skip'``: a step whose loss or gradients are not finite is not
    applied (the gradients are dropped, the weights and optimizer state stay
    as they were), the skip is logged and counted, and training stops once
    ``max_skips`` steps have been skipped in total. The count is kept in the
    checkpoints, so it survives a resume. The gradient check costs one
    device synchronisation per step. With fp16 mixed precision the loss
    scaler already skips steps with infinite gradients; there only
    non-finite losses are counted.
    """

    priority = 'HIGHEST'

    def __init__(self, mode: str = 'stop', max_skips: int = 10):
        if mode not in ('stop', 'skip'):
            raise ValueError(f'NaNGuardHook mode={mode!r}: use stop or skip')
        if mode == 'skip' and max_skips < 1:
            raise ValueError(f'NaNGuardHook max_skips={max_skips}: must be '
                             '>= 1')
        self.mode = mode
        self.max_skips = max_skips
        self.skips = 0
        self._skipped_now = False

    @staticmethod
    def _last_checkpoint(runner):
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        return open(marker).read().strip() if osp.isfile(marker) else None

    def before_train(self, runner) -> None:
        if self.mode != 'skip':
            return
        self.skips = int(runner.message_hub.get_info('nan_guard_skips', 0))
        wrapper = runner.optim_wrapper
        scaler = getattr(wrapper, 'loss_scaler', None)
        if scaler is not None and getattr(scaler, 'is_enabled',
                                          lambda: True)():
            return  # fp16: the loss scaler skips non-finite steps itself
        step = wrapper.step

        def guarded_step(**kwargs):
            if grads_are_finite(wrapper.optimizer):
                return step(**kwargs)
            self._skipped_now = True  # zero_grad follows in update_params

        wrapper.step = guarded_step

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        skipped, self._skipped_now = self._skipped_now, False
        bad = {k: float(v) for k, v in (outputs or {}).items()
               if 'loss' in k and not math.isfinite(float(v))}
        if not bad and not skipped:
            return
        terms = ', '.join(f'{k}={v}' for k, v in bad.items()) or \
            'non-finite gradients'
        last = self._last_checkpoint(runner)
        if self.mode == 'stop':
            raise NonFiniteLossError(
                f'non-finite loss at iteration {runner.iter + 1}: {terms}. '
                + (f'The last good checkpoint is {last}; ' if last else
                   'No checkpoint was saved yet; ')
                + 'lower the learning rate or check the data, then resume '
                'with --resume.')
        self.skips += 1
        runner.message_hub.update_info('nan_guard_skips', self.skips)
        runner.logger.warning(
            f'NaN guard: skipped the update of iteration {runner.iter + 1} '
            f'({terms}); {self.skips} of at most {self.max_skips} skips')
        if self.skips >= self.max_skips:
            raise NonFiniteLossError(
                f'{self.skips} steps skipped for non-finite losses or '
                f'gradients (the last at iteration {runner.iter + 1}: '
                f'{terms}); stopping. '
                + (f'The last good checkpoint is {last}; ' if last else '')
                + 'lower the learning rate or check the data, or raise '
                'NaNGuardHook max_skips.')


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint
    *before* writing the new one, so a kill in between leaves nothing to
    resume from. This one writes first (atomically, see
    :mod:`mmseg_ddb.compat`), points ``last_checkpoint`` at it, and only then
    prunes beyond ``max_keep_ckpts``."""

    def _save_checkpoint_with_step(self, runner, step, meta):
        keep = self.max_keep_ckpts
        self.max_keep_ckpts = -1  # the parent saves without pruning
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        if keep <= 0:
            return
        if not self.keep_ckpt_ids or self.keep_ckpt_ids[-1] != step:
            self.keep_ckpt_ids.append(step)
        while len(self.keep_ckpt_ids) > keep:
            old = self.keep_ckpt_ids.popleft()
            if is_main_process():
                path = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(old))
                if self.file_backend.isfile(path):
                    self.file_backend.remove(path)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
