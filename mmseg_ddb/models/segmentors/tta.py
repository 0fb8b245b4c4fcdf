"""Flip / multi-scale test-time augmentation (``tools/test.py --aug-test``)."""
from typing import List

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class DDBTTAModel(SegTTAModel):
    """Averages the class probabilities of every augmented view and takes
    the argmax.

    ``DDBEncoderDecoder.predict`` already returns each view's softmax, flipped
    back and resized to the label size, in ``seg_logits``; mmseg's
    ``SegTTAModel`` would apply a second softmax to them.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        merged = []
        for views in data_samples_list:
            probs = torch.stack([v.seg_logits.data.float() for v in views])
            mean = probs.mean(0)
            out = views[0].new()
            out.set_data(dict(seg_logits=PixelData(data=mean),
                              pred_sem_seg=PixelData(
                                  data=mean.argmax(0, keepdim=True))))
            if 'gt_sem_seg' in views[0]:
                out.gt_sem_seg = views[0].gt_sem_seg
            merged.append(out)
        return merged
