from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset


@DATASETS.register_module()
class DDBDarkZurichDataset(CityscapesLabelDataset):
    """Dark Zurich, labelled with the 19 Cityscapes train ids, with checked
    file lists (mmseg registers its own ``DarkZurichDataset``, hence the
    prefix, as for :class:`DDBCityscapesDataset`).

    The validation set (50 night images) as ``Dark_Zurich_val_anon.zip``
    unpacks, renamed to ``data_root``:
    ``data_root/rgb_anon/val/night/{sequence}/X_rgb_anon.png`` with
    ``data_root/gt/val/night/{sequence}/X_gt_labelTrainIds.png``. The daytime
    reference images (``rgb_anon/val/day``) are not read. For the unlabelled
    train set as a target, pass e.g.
    ``data_prefix=dict(img_path='rgb_anon/train/night')``.
    """

    prepare_hint = ('download Dark_Zurich_val_anon.zip from '
                    'https://www.trace.ethz.ch/publications/2019/'
                    'GCMA_UIoU/, unzip it and rename Dark_Zurich_val_anon/ '
                    'to data/dark_zurich (see data/README.md)')

    def __init__(self,
                 img_suffix='_rgb_anon.png',
                 seg_map_suffix='_gt_labelTrainIds.png',
                 data_prefix=dict(img_path='rgb_anon/val/night',
                                  seg_map_path='gt/val/night'),
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)
