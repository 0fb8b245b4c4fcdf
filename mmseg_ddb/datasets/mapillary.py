from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset


@DATASETS.register_module()
class MapillaryDataset(CityscapesLabelDataset):
    """Mapillary Vistas v1.2 mapped to the 19 Cityscapes classes.

    Labels come from ``tools/convert_datasets/mapillary2cityscape.py ROOT ROOT
    --train_id``: ``data_root/training/images/X.jpg`` with
    ``data_root/cityscapes_trainIdLabel/train/label/X.png``. The half-resolution
    validation set (``mapillary_resize.py``) is ``half/val_img`` +
    ``half/val_label``.
    """

    prepare_hint = ('run `python tools/convert_datasets/mapillary2cityscape.py '
                    'data/mapillary data/mapillary --train_id` (and '
                    '`mapillary_resize.py` for the half-resolution val)')

    def __init__(self,
                 img_suffix='.jpg',
                 seg_map_suffix='.png',
                 data_prefix=dict(
                     img_path='training/images',
                     seg_map_path='cityscapes_trainIdLabel/train/label'),
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)
