"""Mixed precision for inference-like work (test, prototypes, infer,
benchmark): bf16 where the device supports it, fp16 otherwise."""
import contextlib

import torch


def amp_dtype(device_type: str) -> torch.dtype:
    """bf16 on CPUs and on GPUs that support it, fp16 on older GPUs."""
    if device_type == 'cuda' and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast(device_type: str, enabled: bool):
    """``torch.autocast`` in :func:`amp_dtype` (a no-op when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=amp_dtype(device_type))
