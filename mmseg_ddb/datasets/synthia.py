from mmseg.registry import DATASETS

from .base import CityscapesLabelDataset

#: Train ids that occur in SYNTHIA (terrain, truck and train never do).
SYNTHIA_16_CLASSES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
#: The 13-class protocol also leaves out wall, fence and pole.
SYNTHIA_13_CLASSES = (0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)


@DATASETS.register_module()
class SynthiaDataset(CityscapesLabelDataset):
    """SYNTHIA-RAND-CITYSCAPES, as written by ``tools/convert_datasets/synthia.py``.

    ``data_root/RGB/0000000.png`` with ``data_root/GT/LABELS/0000000_labelTrainIds.png``.
    Labels use the 19 Cityscapes train ids; only 16 of them occur
    (:data:`SYNTHIA_16_CLASSES`).
    """

    prepare_hint = ('run `python tools/convert_datasets/synthia.py '
                    'data/synthia --nproc 8` on the extracted SYNTHIA')

    def __init__(self,
                 img_suffix='.png',
                 seg_map_suffix='_labelTrainIds.png',
                 data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)
