import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

from mmseg.registry import DATASETS

from ..errors import ConfigError, DataError
from .base import CityscapesLabelDataset

#: ACDC's adverse conditions, one folder each under ``rgb_anon/`` and ``gt/``.
ACDC_CONDITIONS = ('fog', 'night', 'rain', 'snow')


@DATASETS.register_module()
class ACDCDataset(CityscapesLabelDataset):
    """ACDC (Adverse Conditions Dataset with Correspondences), labelled with
    the 19 Cityscapes train ids, as the official downloads unpack.

    ``data_root/rgb_anon/{condition}/{split}/{sequence}/X_rgb_anon.png`` with
    ``data_root/gt/{condition}/{split}/{sequence}/X_gt_labelTrainIds.png``
    for every condition in ``conditions``, read in that order. The
    ``{split}_ref`` folders (daytime reference images) are not read.

    Args:
        split (str): ``'val'`` (406 images), ``'train'`` or ``'test'`` (no
            public labels: pass ``data_prefix=dict(img_path='rgb_anon')``).
        conditions (str | Sequence[str]): The condition folders read, a
            subset of ``('fog', 'night', 'rain', 'snow')``. Default: all.
    """

    prepare_hint = ('download rgb_anon_trainvaltest.zip and gt_trainval.zip '
                    'from https://acdc.vision.ee.ethz.ch and unzip both into '
                    'data/acdc (see data/README.md)')

    def __init__(self,
                 split: str = 'val',
                 conditions: Union[str, Sequence[str]] = ACDC_CONDITIONS,
                 img_suffix='_rgb_anon.png',
                 seg_map_suffix='_gt_labelTrainIds.png',
                 data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
                 **kwargs):
        if isinstance(conditions, str):
            conditions = (conditions, )
        conditions = tuple(dict.fromkeys(conditions))  # unique, in order
        unknown = [c for c in conditions if c not in ACDC_CONDITIONS]
        if unknown or not conditions:
            raise ConfigError(
                f'ACDCDataset: conditions={list(conditions)!r}: '
                + (f'unknown condition {unknown[0]!r}' if unknown else 'empty')
                + f'; choose from {", ".join(ACDC_CONDITIONS)}')
        # read by folder_pairs() while the base class loads the data list
        self.split = split
        self.conditions = conditions
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)

    def folder_pairs(self) -> List[Tuple[str, Optional[str]]]:
        img_root = self.data_prefix.get('img_path', None)
        ann_root = self.data_prefix.get('seg_map_path', None)
        if not img_root:
            raise ConfigError('ACDCDataset: data_prefix has no img_path '
                              "(the default is dict(img_path='rgb_anon', "
                              "seg_map_path='gt'))")
        pairs = []
        for condition in self.conditions:
            folders = [('image', osp.join(img_root, condition, self.split),
                        'rgb_anon_trainvaltest.zip')]
            if ann_root:
                folders.append(('label', osp.join(ann_root, condition,
                                                  self.split),
                                'gt_trainval.zip'))
            for kind, folder, archive in folders:
                if not osp.isdir(folder):
                    raise DataError(
                        f'ACDCDataset: {kind} folder {folder!r} of condition '
                        f'{condition!r} does not exist. Unzip {archive} into '
                        f'{self.data_root!r} (see data/README.md), or leave '
                        f'{condition!r} out of conditions=.')
            pairs.append((folders[0][1], folders[1][1] if ann_root else None))
        return pairs
