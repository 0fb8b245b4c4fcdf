"""The prototype file, in one place: its name, format, writing, reading and checks.

* **Name** (the original's convention, METHOD.md 2.4):
  ``prototypes/<task>_round<r>/<task>_st-<cu|ca>_dlv2.pth``, derived from the ST
  config's file name by :func:`default_prototype_path`. The original README's task
  names (``gta2cs``, ``gta2city``) are the same task as ``gtav2cityscapes``, so every
  config name of that task leads to the one file its CKD config reads.
* **Format**: ``{'prototypes': Tensor[K, D] (float32, CPU), 'meta': {...}}``; the
  original wrote a bare ``[19, 256]`` tensor, and both forms load.
* **Checks** on load: a finite ``[K, D]`` tensor matching the teacher it is for.

This module is at the bottom of the package: it imports nothing from ``models`` or
``apis``.
"""
import io
import os.path as osp
import re
from typing import List, Optional

import torch
from torch import Tensor

from ..errors import CheckpointError, ConfigError
from .checkpoint import load_weights_file
from .fileio import atomic_write

#: the original README's names of a task -> the task name of our configs
TASK_ALIASES = {'gta2cs': 'gtav2cityscapes', 'gta2city': 'gtav2cityscapes'}

_ST_CONFIG_NAMES = (
    # r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes, st_cu_synthetic
    re.compile(r'^(?:r(?P<round>\d+)_)?st_(?P<path>cu|ca)_(?:.*_)?'
               r'(?P<task>[^_]+)$'),
    # gta2cs_st-cu-r2_dlv2red-adapter_r101v1c_poly10warm_s0 (original README)
    re.compile(r'^(?P<task>[^_]+)_st-(?P<path>cu|ca)(?:-r(?P<round>\d+))?_'),
)

RECOMPUTE_HINT = ('Recompute them with `python tools/cal_prototypes/cal_prototype.py '
                  'CONFIG CHECKPOINT` using the Stage 1 (ST) config and checkpoint of '
                  'this teacher.')


def canonical_task(task: str) -> str:
    """Our name of a task (``gta2cs`` -> ``gtav2cityscapes``; others unchanged)."""
    return TASK_ALIASES.get(task, task)


#: network tags in config names; a name with none of them is DeepLabV2's
NETWORK_TAGS = ('mitb5', 'mit-tiny', 'dinov2-b', 'dinov2-l', 'vit-tiny')


def network_tag(name: str) -> str:
    """The network of a config name, for file names: ``'mitb5'`` for
    ``r1_st_cu_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes``, ``'dlv2'`` (the
    original's) for the DeepLabV2 configs."""
    words = f'_{name}_'
    return next((t for t in NETWORK_TAGS if f'_{t}_' in words), 'dlv2')


def default_prototype_path(config: str, postfix: str = '') -> str:
    """``prototypes/<task>_round<r>/<task>_st-<cu|ca>_<net><postfix>.pth`` from an ST
    config's file name (the original's convention, with the task's canonical name;
    ``<net>`` is :func:`network_tag`, ``dlv2`` for DeepLabV2)."""
    name = osp.splitext(osp.basename(config))[0]
    for pattern in _ST_CONFIG_NAMES:
        m = pattern.match(name)
        if m:
            task, rnd = canonical_task(m.group('task')), m.group('round') or '1'
            return (f'prototypes/{task}_round{rnd}/'
                    f'{task}_st-{m.group("path")}_{network_tag(name)}{postfix}.pth')
    raise ConfigError(
        f'cannot derive a prototype file name from {name!r} (expected '
        '"r<round>_st_<cu|ca>_..._<task>"); pass --out FILE')


def alias_paths(path: str) -> List[str]:
    """``path`` spelled with each of the original README's names of its task (e.g.
    ``checkpoints/gtav2cityscapes_round2/gtav2cityscapes_st-cu_dlv2.pth`` ->
    ``checkpoints/gta2cs_round2/gta2cs_st-cu_dlv2.pth``, ...), where a user who
    followed that README put the file."""
    out = []
    for alias, task in TASK_ALIASES.items():
        if f'{task}_' in path:
            out.append(path.replace(f'{task}_', f'{alias}_'))
    return out


def existing_path(path: Optional[str]) -> Optional[str]:
    """``path`` if it exists, else the first of its :func:`alias_paths` that does
    (a file placed as the original README says), else ``path`` unchanged."""
    if not path or osp.isfile(path):
        return path
    return next((p for p in alias_paths(path) if osp.isfile(p)), path)


def save_prototypes(path: str, prototypes: Tensor, meta: dict) -> None:
    """Write ``{'prototypes', 'meta'}`` atomically (a temporary file, then rename)."""
    buffer = io.BytesIO()
    torch.save(dict(prototypes=prototypes.detach().cpu().float(), meta=meta),
               buffer)
    atomic_write(path, buffer.getvalue())


def check_prototypes(prototypes: object, num_classes: int, feature_dim: int,
                     path: str) -> None:
    """Raise early if loaded prototypes do not fit the model.

    Args:
        prototypes (object): What was loaded from ``path``.
        num_classes (int): Expected number of classes K.
        feature_dim (int): Expected feature dimension D.
        path (str): The file they were loaded from, for the message.

    Raises:
        ValueError: If ``prototypes`` is not a [K, D] tensor of finite values.
    """
    if not isinstance(prototypes, Tensor):
        raise ValueError(f'Prototypes in {path} must be a tensor of shape '
                         f'[{num_classes}, {feature_dim}], got a '
                         f'{type(prototypes).__name__}. {RECOMPUTE_HINT}')
    if tuple(prototypes.shape) != (num_classes, feature_dim):
        raise ValueError(f'Prototypes in {path} have shape {list(prototypes.shape)}, '
                         f'expected [num_classes, feature_dim] = '
                         f'[{num_classes}, {feature_dim}]. {RECOMPUTE_HINT}')
    if not torch.isfinite(prototypes).all():
        raise ValueError(f'Prototypes in {path} contain NaN or infinite values. '
                         f'{RECOMPUTE_HINT}')


def load_prototypes(path: str, num_classes: int, feature_dim: int,
                    produced_by: Optional[str] = None) -> Tensor:
    """Load and check a prototype file against the teacher it is for."""
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
