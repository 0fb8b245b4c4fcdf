"""Pairs of source and target samples for the UDA stages."""
import copy
from typing import List, Optional, Union

import numpy as np
from mmengine.dataset import ConcatDataset
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from ..models.uda.monitor import MONITOR_FIELD


def build_domain(cfg: Union[dict, List[dict]]):
    """One dataset, or a concatenation for a list (multi-source GTA +
    Synscapes, multi-target Cityscapes + Mapillary; METHOD.md 2.7)."""
    if isinstance(cfg, (list, tuple)):
        parts = [DATASETS.build(c) for c in cfg]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return DATASETS.build(cfg)


def with_labels(cfg: Union[dict, List[dict]], where: str,
                folder: Optional[str] = None):
    """A target dataset config (or list) that also loads its labels: a
    ``DDBLoadAnnotations`` right after the image is read (so every later
    transform, random ones included, moves the label with the image and
    draws exactly the random numbers it draws without it). The label folder
    is ``folder`` when given, else the config's ``data_prefix.seg_map_path``,
    which must then be set."""
    if isinstance(cfg, (list, tuple)):
        return [with_labels(c, f'{where}[{i}]', folder)
                for i, c in enumerate(cfg)]
    cfg = copy.deepcopy(dict(cfg))
    if folder:
        cfg['data_prefix'] = dict(cfg.get('data_prefix') or {},
                                  seg_map_path=folder)
    if not (cfg.get('data_prefix') or {}).get('seg_map_path'):
        raise ConfigError(
            f'{where}: target_labels needs the target\'s label folder: set '
            'train_dataloader.dataset.target_labels to it (e.g. '
            f'\'gtFine/train\' for Cityscapes) or {where}.data_prefix.'
            'seg_map_path')
    pipeline = list(cfg.get('pipeline') or [])
    if any('LoadAnnotations' in str(t.get('type')) for t in pipeline):
        return cfg
    load = [i for i, t in enumerate(pipeline)
            if 'LoadImage' in str(t.get('type'))]
    if not load:
        raise ConfigError(f'{where}.pipeline: target_labels=True needs an '
                          'image-loading transform to add the labels after')
    pipeline.insert(load[0] + 1, dict(type='DDBLoadAnnotations'))
    cfg['pipeline'] = pipeline
    return cfg


def to_monitor_field(sample: dict) -> dict:
    """Move a packed sample's ``gt_sem_seg`` to :data:`MONITOR_FIELD`, a
    field no loss reads."""
    data_sample = sample['data_samples']
    label = data_sample.gt_sem_seg
    del data_sample.gt_sem_seg
    data_sample.set_field(label, MONITOR_FIELD)
    return sample


@DATASETS.register_module()
class UDADataset(Dataset):
    """``dict(source=..., target=...)``: a labelled source sample and an
    unlabelled target sample (METHOD.md 2.2, STDataset).

    The source is ``source[idx % |S|]``; the target is drawn uniformly at
    random (the worker's numpy generator, which mmengine seeds per worker, so
    runs are reproducible); the length is ``max(|S|, |T|)``. A list of
    datasets on either side is concatenated and sampled uniformly.

    ``target_labels=True`` also loads the target's labels (its
    ``data_prefix.seg_map_path``; a folder name instead of True, e.g.
    ``'gtFine/train'``, sets it) for pseudo-label monitoring only
    (``uda.monitor_pseudo_labels``): they travel in each target sample's
    ``monitor_sem_seg``, which no loss reads, and the images and crops are
    exactly those without them.
    """

    def __init__(self, source, target,
                 target_labels: Union[bool, str] = False):
        self.source = build_domain(source)
        self.target_labels = bool(target_labels)
        if self.target_labels:
            target = with_labels(
                target, 'train_dataloader.dataset.target',
                target_labels if isinstance(target_labels, str) else None)
        try:
            self.target = build_domain(target)
        except DataError as exc:
            if not self.target_labels:
                raise
            raise DataError(
                f'{exc} (train_dataloader.dataset.target_labels loads the '
                "target's labels for pseudo-label monitoring only; set it "
                'and uda.monitor_pseudo_labels to False to train without '
                'them)') from exc
        self.metainfo = self.source.metainfo

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    def __getitem__(self, idx: int) -> dict:
        source = self.source[idx % len(self.source)]
        target = self.target[np.random.randint(len(self.target))]
        if self.target_labels:
            target = to_monitor_field(target)
        return dict(source=source, target=target)
