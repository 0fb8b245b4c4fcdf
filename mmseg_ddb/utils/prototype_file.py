"""Prototype files: ``{'prototypes': Tensor[K, D], 'meta': {...}}``.

The original wrote a bare ``[19, 256]`` tensor; both forms load.
"""
import io
import os.path as osp
from typing import Optional

import torch

from ..errors import CheckpointError
from .checkpoint import load_weights_file
from .fileio import atomic_write


def save_prototypes(path: str, prototypes: torch.Tensor, meta: dict) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    buffer = io.BytesIO()
    torch.save(dict(prototypes=prototypes.detach().cpu().float(), meta=meta),
               buffer)
    atomic_write(path, buffer.getvalue())


def load_prototypes(path: str, num_classes: int, feature_dim: int,
                    produced_by: Optional[str] = None) -> torch.Tensor:
    """Load and check a prototype file against the teacher it is for."""
    from ..models.uda.prototypes import check_prototypes
    hint = produced_by or 'python tools/cal_prototypes/cal_prototype.py ' \
        'ST_CONFIG ST_CHECKPOINT --out ' + path
    if not osp.isfile(path):
        raise CheckpointError(
            f'prototype file {path} not found; compute it with `{hint}`')
    obj = load_weights_file(path)
    protos = obj.get('prototypes') if isinstance(obj, dict) else obj
    meta = obj.get('meta') if isinstance(obj, dict) else None
    try:
        check_prototypes(protos, num_classes, feature_dim, path)
    except ValueError as exc:
        made = ''
        if isinstance(meta, dict) and meta.get('config'):
            # say which model the file is for: the usual cause is a file of
            # another stage / config
            made = (f' (the file was computed from {meta["config"]}'
                    + (f', checkpoint {meta["checkpoint"]}'
                       if meta.get('checkpoint') else '') + ')')
        msg = str(exc)
        cut = msg.find('. ')
        msg = msg[:cut] + made + msg[cut:] if made and cut > 0 else msg
        raise CheckpointError(msg) from exc
    return protos.float()
