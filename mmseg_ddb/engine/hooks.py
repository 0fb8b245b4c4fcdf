"""Hooks that make a resumed run continue exactly where it stopped."""
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


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
