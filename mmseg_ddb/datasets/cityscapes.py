from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset


@DATASETS.register_module()
class DDBCityscapesDataset(CityscapesLabelDataset):
    """Cityscapes with checked file lists (mmseg's layout and suffixes).

    ``data_root/leftImg8bit/{split}/{city}/X_leftImg8bit.png`` with
    ``data_root/gtFine/{split}/{city}/X_gtFine_labelTrainIds.png``.
    ACDC and Dark Zurich have their own classes (``acdc.py``,
    ``dark_zurich.py``).
    """

    prepare_hint = ('run `python tools/convert_datasets/cityscapes.py '
                    'data/cityscapes --nproc 8` to make the *_labelTrainIds.png')

    def __init__(self,
                 img_suffix='_leftImg8bit.png',
                 seg_map_suffix='_gtFine_labelTrainIds.png',
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         **kwargs)
