"""Checks of a requested device against the GPUs this machine has, so that a
CUDA request that cannot be met is refused with one clear line."""
from typing import Optional

from ..errors import ConfigError


def visible_gpus() -> int:
    """Number of CUDA devices torch can use here (0 without CUDA)."""
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _refuse(option: str, value: str, index: int, count: int) -> ConfigError:
    have = ('no CUDA GPU is visible' if count == 0 else
            f'only {count} CUDA GPU(s) are visible (0..{count - 1})')
    fix = (f'leave out {option} to run on the CPU' if count == 0 else
           f'pick a GPU in 0..{count - 1} or check CUDA_VISIBLE_DEVICES')
    return ConfigError(f'{option} {value}: GPU {index} requested but {have}; '
                       f'{fix}')


def check_gpu_id(gpu_id: Optional[int], option: str = '--gpu-id') -> None:
    """Refuse a GPU index this machine does not have."""
    if gpu_id is None:
        return
    count = visible_gpus()
    if gpu_id < 0 or gpu_id >= count:
        raise _refuse(option, str(gpu_id), gpu_id, count)


def check_device(device: Optional[str], option: str = '--device') -> None:
    """Refuse a device string torch does not know, or a CUDA device this
    machine does not have (``cuda`` means ``cuda:0``)."""
    if device is None:
        return
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f'{option} {device}: not a device ({exc}); use '
                          'cpu, cuda or cuda:N') from None
    if dev.type == 'cuda':
        index = 0 if dev.index is None else dev.index
        count = visible_gpus()
        if index >= count:
            raise _refuse(option, device, index, count)
