"""Pairs of source and target samples for the UDA stages."""
from typing import List, Union

import numpy as np
from mmengine.dataset import ConcatDataset
from mmseg.registry import DATASETS
from torch.utils.data import Dataset


def build_domain(cfg: Union[dict, List[dict]]):
    """One dataset, or a concatenation for a list (multi-source GTA +
    Synscapes, multi-target Cityscapes + Mapillary; METHOD.md 2.7)."""
    if isinstance(cfg, (list, tuple)):
        parts = [DATASETS.build(c) for c in cfg]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return DATASETS.build(cfg)


@DATASETS.register_module()
class UDADataset(Dataset):
    """``dict(source=..., target=...)``: a labelled source sample and an
    unlabelled target sample (METHOD.md 2.2, STDataset).

    The source is ``source[idx % |S|]``; the target is drawn uniformly at
    random (the worker's numpy generator, which mmengine seeds per worker, so
    runs are reproducible); the length is ``max(|S|, |T|)``. A list of
    datasets on either side is concatenated and sampled uniformly.
    """

    def __init__(self, source, target):
        self.source = build_domain(source)
        self.target = build_domain(target)
        self.metainfo = self.source.metainfo

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    def __getitem__(self, idx: int) -> dict:
        source = self.source[idx % len(self.source)]
        target = self.target[np.random.randint(len(self.target))]
        return dict(source=source, target=target)
