"""Mixed precision: bf16 where the device runs it natively, fp16 otherwise.

Asked of the device the process computes on, when it computes (after a
distributed run has picked each rank's GPU): probing earlier would ask GPU 0
from every rank and open a CUDA context there.
"""
import contextlib
from typing import Optional

import torch


def native_bf16(device: Optional[int] = None) -> bool:
    """Whether the CUDA ``device`` (default: the current one) runs bf16 in
    hardware (compute capability 8.0 and later). ``torch.cuda.
    is_bf16_supported()`` also counts emulation, which is slow: V100, T4 and
    RTX 20xx would get emulated bf16 instead of fp16."""
    try:
        if device is None:
            return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation
        pass
    if device is None:
        device = torch.cuda.current_device()
    return torch.cuda.get_device_capability(device)[0] >= 8


def amp_dtype(device_type: str) -> torch.dtype:
    """bf16 on CPUs and on GPUs with native bf16, fp16 on older GPUs."""
    if device_type == 'cuda' and not native_bf16():
        return torch.float16
    return torch.bfloat16


def autocast(device_type: str, enabled: bool):
    """``torch.autocast`` in :func:`amp_dtype` (a no-op when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=amp_dtype(device_type))
