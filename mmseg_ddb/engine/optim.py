"""bf16 mixed-precision training (``tools/train.py --amp``)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """Mixed precision in bf16: the forward passes of the step (student,
    teachers, EMA) run under ``torch.autocast(dtype=torch.bfloat16)``; the
    weights, gradients, optimizer state and EMA stay fp32, and the losses,
    softmaxes and prototype distances are computed in fp32 by the models.

    bf16 has fp32's exponent range, so unlike fp16 it needs no loss scaling:
    no gradient scaler, and none of the scaler's per-step host-device
    synchronisation (its infinity check). Unlike mmengine's
    ``AmpOptimWrapper`` it also runs on the CPU (bf16 autocast).
    """

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), \
                torch.autocast(device, dtype=torch.bfloat16):
            yield
