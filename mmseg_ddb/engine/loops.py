"""The test loop of ``tools/test.py``: mmengine's, with bf16 autocast."""
import torch
from mmengine.runner import TestLoop
from mmengine.runner.loops import _update_losses
from mmseg.registry import LOOPS

from ..utils.amp import autocast


@LOOPS.register_module()
class DDBTestLoop(TestLoop):
    """``TestLoop`` whose ``amp=True`` runs the network under autocast in
    bf16 (fp16 on GPUs without bf16); the softmax, the resize to the label
    size and the confusion matrix stay in fp32 (``DDBEncoderDecoder.predict``
    casts the logits up before the softmax)."""

    def __init__(self, runner, dataloader, evaluator, amp: bool = False):
        super().__init__(runner, dataloader, evaluator, fp16=False)
        self.amp = amp

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        device = next(self.runner.model.parameters()).device.type
        with autocast(device, self.amp):
            outputs = self.runner.model.test_step(data_batch)
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter', batch_idx=idx, data_batch=data_batch,
            outputs=outputs)
