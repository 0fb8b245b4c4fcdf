"""Mixed-precision training (``tools/train.py --amp``)."""
from contextlib import contextmanager

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..utils.amp import native_bf16


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


@OPTIM_WRAPPERS.register_module(name='AutoAmpOptimWrapper')
def auto_amp_optim_wrapper(optimizer, loss_scale='dynamic', **kwargs):
    """``--amp``: :class:`BF16OptimWrapper` on CPUs and on GPUs with native
    bf16 (compute capability >= 8.0), mmengine's ``AmpOptimWrapper`` (fp16
    with ``loss_scale``) on older GPUs.

    The runner builds the optimizer wrapper after the distributed setup, so
    the choice is made on the GPU this rank trains on, and nothing touches a
    GPU while the config is prepared."""
    if get_device() == 'cuda' and not native_bf16():
        wrapper = AmpOptimWrapper(optimizer=optimizer, loss_scale=loss_scale,
                                  **kwargs)
    else:
        wrapper = BF16OptimWrapper(optimizer=optimizer, **kwargs)
    print_log(f'--amp: {type(wrapper).__name__}', logger='current')
    return wrapper
