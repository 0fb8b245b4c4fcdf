"""Class prototypes of an ST model on the target training set (METHOD.md 2.4)."""
import os.path as osp
from functools import partial
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate, worker_init_fn
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm

from ..errors import ConfigError
from ..models.uda.prototype_estimation import PrototypeEstimator
from ..utils import load_model_weights
from ..utils.amp import autocast
from ..utils.prototype_file import default_prototype_path, save_prototypes

__all__ = ['compute_prototypes', 'default_prototype_path', 'target_dataset_cfg',
           'build_target_loader', 'write_prototypes']


def target_dataset_cfg(cfg: Config):
    """The target training set of an ST config (its training pipeline)."""
    dataset = cfg.train_dataloader.dataset
    if dataset.get('type') == 'UDADataset':
        return dataset.target
    return dataset


def build_target_loader(cfg: Config, batch_size: int, num_workers: int,
                        seed: int = 0) -> DataLoader:
    target = target_dataset_cfg(cfg)
    parts = target if isinstance(target, (list, tuple)) else [target]
    datasets = [DATASETS.build(p) for p in parts]
    dataset = datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
    init_fn = partial(worker_init_fn, num_workers=num_workers, rank=0,
                      seed=seed) if num_workers > 0 else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                      num_workers=num_workers, collate_fn=pseudo_collate,
                      worker_init_fn=init_fn,
                      persistent_workers=num_workers > 0)


@torch.no_grad()
def compute_prototypes(cfg: Config, checkpoint: str, epochs: int = 4,
                       batch_size: Optional[int] = None,
                       num_workers: Optional[int] = None,
                       device: Optional[str] = None, seed: int = 0,
                       progress: bool = True,
                       log: Callable[[str], None] = print,
                       amp: bool = False) -> PrototypeEstimator:
    """Run the ST student over the target training crops for ``epochs``.

    Labels are the argmax of the student (no threshold); for each image and
    class with >= 10 predicted pixels the mean feature enters a running mean
    capped at 3000 vectors (METHOD.md 2.4). With ``amp`` the network runs in
    bf16 (fp16 on GPUs without bf16); the upsampling to the crop, the argmax
    and the means are in fp32.
    """
    if epochs <= 0:
        raise ConfigError(f'--epochs must be positive, got {epochs}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = MODELS.build(cfg.model)
    load_model_weights(model, checkpoint, prefixes=('model.', 'stu_model.'))
    model.to(device).eval()
    batch_size = batch_size or cfg.train_dataloader.get('batch_size', 4)
    if num_workers is None:
        num_workers = cfg.train_dataloader.get('num_workers', 0)
    torch.manual_seed(seed)
    import numpy as np
    np.random.seed(seed)
    loader = build_target_loader(cfg, batch_size, num_workers, seed)
    estimator = PrototypeEstimator(model.decode_head.num_classes,
                                   model.feature_dim, device=device)
    bar = tqdm(total=epochs * len(loader), desc='prototypes',
               disable=not progress, dynamic_ncols=True)
    for _ in range(epochs):
        for data in loader:
            data = model.data_preprocessor(data, True)
            inputs = data['inputs']
            with autocast(torch.device(device).type, amp):
                logits, feats = model.logits_and_features(inputs)
            size = inputs.shape[2:]
            logits, feats = (F.interpolate(
                t.float(), size=size, mode='bilinear',
                align_corners=model.align_corners) for t in (logits, feats))
            estimator.update(feats, logits)
            bar.update()
    bar.close()
    names = model.decode_head.num_classes
    classes = getattr(loader.dataset, 'metainfo', {}).get('classes') or \
        [str(i) for i in range(names)]
    log('class            vectors      pixels')
    for name, n_img, n_pix in zip(classes, estimator.image_counts.tolist(),
                                  estimator.pixel_counts.tolist()):
        log(f'{name:<15} {n_img:8d} {n_pix:12d}')
    return estimator


def write_prototypes(path: str, estimator: PrototypeEstimator, *,
                     config: str, checkpoint: str, epochs: int,
                     amp: bool = False) -> None:
    """Save the estimator's prototypes with the record of how they were made
    (the format of :mod:`mmseg_ddb.utils.prototype_file`)."""
    meta = dict(
        amp=amp,
        num_classes=int(estimator.prototypes.shape[0]),
        feature_dim=int(estimator.prototypes.shape[1]),
        config=config, checkpoint=osp.abspath(checkpoint), epochs=epochs,
        cap=estimator.cap, min_pixels=estimator.min_pixels,
        vectors_per_class=estimator.image_counts.tolist(),
        pixels_per_class=estimator.pixel_counts.tolist())
    save_prototypes(path, estimator.result(), meta)
