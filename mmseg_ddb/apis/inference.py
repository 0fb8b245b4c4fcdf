"""Inference on your own images: a model from a config and any DDB / mmseg
checkpoint, predictions for arrays or files of any size."""
import glob
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ..errors import DataError
from ..utils import load_config, load_model_weights, sync_bn_to_bn
from ..utils.amp import autocast
from ..utils.images import colorize  # noqa: F401  (public here too)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def init_segmentor(config: Union[str, Config], checkpoint: Optional[str] = None,
                   device: Optional[str] = None, trust: bool = False):
    """The plain segmentor of a (possibly UDA) config, with the evaluated
    model of ``checkpoint`` loaded (ST ``model.*`` / CKD ``stu_model.*``)."""
    cfg = load_config(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    sync_bn_to_bn(cfg.model)
    cfg.model.pretrained = None
    cfg.model.init_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_model_weights(model, checkpoint, trust=trust)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model.cfg = cfg
    return model.to(device).eval()


def _test_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for in-memory BGR arrays, without labels."""
    dataset = cfg.test_dataloader.dataset
    if dataset.get('type') == 'ConcatDataset':
        dataset = dataset.datasets[0]
    steps = []
    for step in dataset.pipeline:
        kind = step['type']
        if 'Annotations' in kind:
            continue
        if 'LoadImage' in kind:
            step = dict(type='LoadImageFromNDArray')
        steps.append(step)
    return Compose(steps)


@torch.no_grad()
def inference(model, images: Sequence[np.ndarray],
              batch_size: int = 1, amp: bool = False) -> List[np.ndarray]:
    """Train-id maps (uint8, each the size of its image) for BGR uint8 images.

    Images of the same size are batched together (``batch_size``), so whole
    folders run at full speed.
    """
    pipeline = _test_pipeline(model.cfg)
    results: List[Optional[np.ndarray]] = [None] * len(images)
    by_size = {}
    for i, img in enumerate(images):
        by_size.setdefault(img.shape[:2], []).append(i)
    device = next(model.parameters()).device
    for indices in by_size.values():
        for k in range(0, len(indices), batch_size):
            chunk = indices[k:k + batch_size]
            batch = pseudo_collate(
                [pipeline(dict(img=images[i])) for i in chunk])
            with autocast(device.type, amp):
                outs = model.test_step(batch)
            for i, out in zip(chunk, outs):
                results[i] = out.pred_sem_seg.data[0].to(
                    torch.uint8).cpu().numpy()
    return results


def list_images(spec: str) -> List[str]:
    """An image file, a folder (recursively) or a glob pattern."""
    if osp.isdir(spec):
        files = [osp.join(d, f) for d, _, fs in os.walk(spec) for f in fs
                 if f.lower().endswith(IMAGE_SUFFIXES)]
    elif osp.isfile(spec):
        files = [spec]
    else:
        files = [f for f in glob.glob(spec, recursive=True)
                 if f.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise DataError(f'no image found at {spec!r} (a file, a folder or a '
                        f'glob of {", ".join(IMAGE_SUFFIXES)} files)')
    return sorted(files)
