from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset


@DATASETS.register_module()
class SynscapesDataset(CityscapesLabelDataset):
    """Synscapes, as written by ``tools/convert_datasets/synscapes.py``.

    ``data_root/img/rgb/N.png`` with ``data_root/img/class/N_gt_labelTrainIds.png``.
    """

    prepare_hint = ('run `python tools/convert_datasets/synscapes.py '
                    'data/synscapes --nproc 8` on the extracted Synscapes')

    def __init__(self,
                 img_suffix='.png',
                 seg_map_suffix='_gt_labelTrainIds.png',
                 data_prefix=dict(img_path='img/rgb',
                                  seg_map_path='img/class'),
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)
