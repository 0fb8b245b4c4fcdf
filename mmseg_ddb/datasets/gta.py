from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset


@DATASETS.register_module()
class GTADataset(CityscapesLabelDataset):
    """GTA5, as written by ``tools/convert_datasets/gta.py``.

    ``data_root/images/00001.png`` with ``data_root/labels/00001_labelTrainIds.png``.
    """

    prepare_hint = ('run `python tools/convert_datasets/gta.py data/gta '
                    '--nproc 8` on the extracted GTA5 images and labels')

    def __init__(self,
                 img_suffix='.png',
                 seg_map_suffix='_labelTrainIds.png',
                 data_prefix=dict(img_path='images', seg_map_path='labels'),
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)
