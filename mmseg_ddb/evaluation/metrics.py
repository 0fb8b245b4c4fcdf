"""The mIoU metric used during training and by ``tools/test.py``."""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from .iou import confusion_matrix, iou_from_confusion


def format_table(class_names: Sequence[str], result: dict) -> str:
    """Per-class IoU / Acc table in percent, one line per class."""
    width = max(len(n) for n in class_names)
    lines = [f'{"class":<{width}}   IoU     Acc', '-' * (width + 16)]
    for name, iou, acc in zip(class_names, result['IoU'], result['Acc']):
        fmt = lambda v: '  nan ' if np.isnan(v) else f'{100 * v:6.2f}'  # noqa
        lines.append(f'{name:<{width}} {fmt(iou)}  {fmt(acc)}')
    lines.append('-' * (width + 16))
    lines.append(f'{"mean":<{width}} {100 * result["mIoU"]:6.2f}  '
                 f'{100 * result["mAcc"]:6.2f}   (aAcc {100 * result["aAcc"]:.2f})')
    return '\n'.join(lines)


@METRICS.register_module()
class DDBIoUMetric(BaseMetric):
    """mIoU over a whole set from a confusion matrix accumulated on the device.

    Returns ``mIoU``, ``mAcc``, ``aAcc`` and ``IoU.<class>`` for every class,
    in percent. ``classes`` restricts the means to a subset of class indices
    (SYNTHIA 16 / 13), and adds them under ``mIoU`` with the subset's name in
    ``subset_name`` (e.g. ``mIoU16``).

    Args:
        ignore_index (int): Default: 255.
        classes (Sequence[int], optional): Class subset for the means.
        subset_name (str, optional): Key suffix for the subset means.
        prefix (str, optional): Metric prefix, e.g. a dataset name for
            multi-target evaluation.
    """

    default_prefix = None

    def __init__(self, ignore_index: int = 255,
                 classes: Optional[Sequence[int]] = None,
                 subset_name: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self.classes = None if classes is None else list(classes)
        self.subset_name = subset_name
        self._conf = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred.device)
            conf = confusion_matrix(pred, label, num_classes,
                                    self.ignore_index)
            self._conf = conf if self._conf is None else self._conf + conf

    def evaluate(self, size: int) -> dict:
        # The matrix stays on the device while batches come in and moves to
        # the host once; each rank contributes one matrix to the gather.
        if self._conf is not None:
            self.results = [self._conf.cpu().numpy()]
        self._conf = None
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        names = list(self.dataset_meta['classes'])
        conf = np.zeros((len(names), len(names)), dtype=np.int64)
        for r in results:
            conf = conf + np.asarray(r)
        out = iou_from_confusion(conf)
        print_log('\n' + format_table(names, out),
                  logger=MMLogger.get_current_instance())
        metrics = OrderedDict(
            mIoU=round(100 * float(out['mIoU']), 2),
            mAcc=round(100 * float(out['mAcc']), 2),
            aAcc=round(100 * float(out['aAcc']), 2))
        if self.classes is not None:
            sub = iou_from_confusion(conf, self.classes)
            name = self.subset_name or f'{len(self.classes)}'
            metrics[f'mIoU{name}'] = round(100 * float(sub['mIoU']), 2)
        for name, iou in zip(names, out['IoU']):
            metrics[f'IoU.{name}'] = round(100 * float(iou), 2)
        return metrics
