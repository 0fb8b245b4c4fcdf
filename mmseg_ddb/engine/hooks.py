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


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stops training at the first non-finite loss, naming the iteration,
    the loss terms and the last good checkpoint (which the atomic writes of
    :mod:`mmseg_ddb.compat` guarantee is complete), so a diverged run is not
    silently trained on for hours.

    The check reads the losses mmengine already moved to the host for
    logging, so it adds no device synchronisation.
    """

    priority = 'HIGHEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not outputs:
            return
        bad = {k: float(v) for k, v in outputs.items()
               if 'loss' in k and not math.isfinite(float(v))}
        if not bad:
            return
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        last = open(marker).read().strip() if osp.isfile(marker) else None
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteLossError(
            f'non-finite loss at iteration {runner.iter + 1}: {terms}. '
            + (f'The last good checkpoint is {last}; ' if last else
               'No checkpoint was saved yet; ')
            + 'lower the learning rate or check the data, then resume with '
            '--resume.')


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
