"""The deployable model of a checkpoint: one segmentor's weights, the config
beside them, a SHA-256 in the file name (OpenMMLab's published-weights
convention, ``<name>_<YYYYMMDD>-<first 8 hex of the SHA-256>.pth``)."""
import datetime
import hashlib
import io
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config

from ..errors import ConfigError
from ..utils import (
    check_state_dict,
    checkpoint_layout,
    deployed_weights,
    load_config,
    load_weights_file,
    state_dict_of,
)
from ..utils.fileio import atomic_save, atomic_write
from ..version import __version__
from .inference import init_segmentor


def published_name(name: str, digest: str,
                   date: Optional[datetime.date] = None) -> str:
    """``<name>_<YYYYMMDD>-<digest[:8]>.pth``."""
    date = date or datetime.date.today()
    return f'{name}_{date:%Y%m%d}-{digest[:8]}.pth'


def deployable_checkpoint(config: str, checkpoint: str, teacher: bool = False,
                          trust: bool = False) -> Tuple[dict, Config]:
    """``{'state_dict': plain segmentor weights, 'meta': {...}}`` of
    ``checkpoint`` and the config, checked to fit the config's segmentor
    (every key, every shape)."""
    raw = load_weights_file(checkpoint, trust=trust)
    full = state_dict_of(raw)
    layout = checkpoint_layout(full, checkpoint)
    weights = deployed_weights(full, checkpoint, teacher=teacher)
    cfg = load_config(config)
    # the config's plain segmentor (no ImageNet init in the dumped config
    # either); a checkpoint of another config fails here, naming the keys
    model = init_segmentor(cfg, None, 'cpu')
    check_state_dict(model, weights, checkpoint)
    source_meta = raw.get('meta', {}) if isinstance(raw, dict) else {}
    meta = dict(
        config=osp.basename(config),
        source=osp.basename(checkpoint),
        layout=layout,
        model='ema_teacher' if teacher else 'student',
        mmseg_ddb=__version__,
        torch=str(torch.__version__),
    )
    for key in ('iter', 'epoch', 'seed', 'dataset_meta'):
        if isinstance(source_meta, dict) and key in source_meta:
            meta[key] = source_meta[key]
    weights = {k: v.detach().clone().contiguous() for k, v in weights.items()}
    return dict(state_dict=weights, meta=meta), cfg


def publish(config: str, checkpoint: str, out_dir: str,
            name: Optional[str] = None, teacher: bool = False,
            trust: bool = False) -> Tuple[str, str]:
    """Write the deployable model of ``checkpoint`` into ``out_dir``.

    Args:
        config (str): The config the checkpoint was trained with (its
            segmentor is the model; a UDA config is fine).
        checkpoint (str): Plain, ST or CKD, ours or the original's.
        out_dir (str): Created if needed.
        name (str, optional): File name stem (default: the config's).
        teacher (bool): The EMA teacher of an ST checkpoint instead of the
            student.

    Returns:
        (weights path, config path). Both written atomically; the config is
        ``<weights stem>.py``.
    """
    if name is not None and (not name or osp.sep in name):
        raise ConfigError(f'--name {name!r}: give a file name stem without '
                          'a folder')
    ckpt, cfg = deployable_checkpoint(config, checkpoint, teacher, trust)
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    data = buffer.getvalue()
    stem = name or osp.splitext(osp.basename(config))[0]
    if teacher and name is None:
        stem += '_ema-teacher'
    path = osp.join(out_dir, published_name(
        stem, hashlib.sha256(data).hexdigest()))
    cfg_path = osp.splitext(path)[0] + '.py'
    atomic_save(cfg_path, cfg.dump)
    atomic_write(path, data)
    return path, cfg_path
