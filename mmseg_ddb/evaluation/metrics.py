"""The mIoU metric used during training and by ``tools/test.py``."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from ..utils.fileio import atomic_write
from .iou import confusion_matrix, iou_from_confusion
from .plot import save_confusion_matrix


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
    in percent.

    Args:
        ignore_index (int): Default: 255.
        class_subsets (dict, optional): Extra means over class subsets, e.g.
            ``{'16': SYNTHIA_16_CLASSES, '13': SYNTHIA_13_CLASSES}`` adds
            ``mIoU16`` and ``mIoU13`` (computed directly on those classes).
        datasets (dict, optional): Evaluate several target sets separately
            (multi-target): ``{name: path_prefix}``; a sample belongs to the
            first name whose prefix starts its ``img_path``. Keys become
            ``<name>/mIoU`` etc., and ``mIoU`` is the mean of the sets' mIoU.
        output_dir (str, optional): Also write each prediction as a train-id
            PNG ``<image stem>.png`` here (``tools/test.py --out``).
        plot_dir (str, optional): Write the confusion matrix here as a PNG
            (row-normalised) and ``.npy`` (pixel counts), one per target set
            (``tools/test.py --plot-dir``).
        prefix (str, optional): Metric prefix.
    """

    default_prefix = None

    def __init__(self, ignore_index: int = 255,
                 class_subsets: Optional[Dict[str, Sequence[int]]] = None,
                 datasets: Optional[Dict[str, str]] = None,
                 output_dir: Optional[str] = None,
                 plot_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self.class_subsets = {str(k): list(v)
                              for k, v in (class_subsets or {}).items()}
        self.datasets = dict(datasets or {})
        self.output_dir = output_dir
        self.plot_dir = plot_dir
        self._conf = {}
        self._count = 0

    def _set_of(self, sample: dict) -> str:
        if not self.datasets:
            return ''
        path = osp.normpath(str(sample.get('img_path', '')))
        for name, prefix in self.datasets.items():
            prefix = osp.normpath(prefix)
            if path.startswith(prefix) or f'/{prefix}/' in path:
                return name
        raise ValueError(f'DDBIoUMetric: {path} matches none of the dataset '
                         f'prefixes {self.datasets}')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred.device)
            conf = confusion_matrix(pred, label, num_classes,
                                    self.ignore_index)
            key = self._set_of(sample)
            self._conf[key] = conf if key not in self._conf \
                else self._conf[key] + conf
            if self.output_dir:
                self._write_prediction(sample, pred)
        self._count += len(data_samples)

    def _write_prediction(self, sample: dict, pred) -> None:
        stem = osp.splitext(osp.basename(str(sample['img_path'])))[0]
        ok, png = cv2.imencode('.png', pred.cpu().numpy().astype(np.uint8))
        if not ok:
            raise RuntimeError(f'could not encode the prediction of {stem}')
        atomic_write(osp.join(self.output_dir, f'{stem}.png'), png.tobytes())

    def evaluate(self, size: int) -> dict:
        """Sum the confusion matrices of all ranks (one all-reduce of one
        [sets, K, K] tensor on the device, no files: mmengine's default
        collection writes to ``./.dist_test``, which other nodes cannot
        read) and compute the metrics on every rank.

        Raises:
            ValueError: The ranks together processed more images than the
                set has: the sampler padded with repeats (``round_up=True``),
                which would count them twice.
        """
        names = list(self.datasets) or ['']
        num_classes = len(self.dataset_meta['classes'])
        device = next((c.device for c in self._conf.values()), 'cpu')
        total = torch.zeros(len(names), num_classes, num_classes,
                            dtype=torch.int64,
                            device=device)
        for i, name in enumerate(names):
            if name in self._conf:
                total[i] += self._conf[name]
        count = torch.tensor([self._count], dtype=torch.int64)
        all_reduce(total, op='sum')
        all_reduce(count, op='sum')
        self._conf, self._count = {}, 0
        if int(count) > size:
            raise ValueError(
                f'DDBIoUMetric: {int(count)} predictions for {size} images: '
                'the sampler repeats images to fill the last round; use '
                "sampler=dict(type='DefaultSampler', shuffle=False, "
                'round_up=False) for validation and testing')
        matrices = total.cpu().numpy()
        metrics = self.compute_metrics(
            [{name: matrices[i] for i, name in enumerate(names)}])
        if self.prefix:
            metrics = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        return metrics

    def _summary(self, conf: np.ndarray, names, key_prefix: str) -> dict:
        out = iou_from_confusion(conf)
        title = f' ({key_prefix.rstrip("/")})' if key_prefix else ''
        if self.plot_dir and is_main_process():
            stem = 'confusion_matrix' + (
                f'_{key_prefix.rstrip("/")}' if key_prefix else '')
            path = save_confusion_matrix(
                conf, names, self.plot_dir, stem,
                f'confusion matrix{title}, mIoU {100 * out["mIoU"]:.2f}')
            print_log(f'confusion matrix written to {path}',
                      logger=MMLogger.get_current_instance())
        print_log(f'\nper-class results{title}:\n' + format_table(names, out),
                  logger=MMLogger.get_current_instance())
        metrics = OrderedDict()
        for key in ('mIoU', 'mAcc', 'aAcc'):
            metrics[key_prefix + key] = round(100 * float(out[key]), 2)
        for name, classes in self.class_subsets.items():
            sub = iou_from_confusion(conf, classes)
            metrics[f'{key_prefix}mIoU{name}'] = round(
                100 * float(sub['mIoU']), 2)
        for name, iou in zip(names, out['IoU']):
            metrics[f'{key_prefix}IoU.{name}'] = round(100 * float(iou), 2)
        return metrics

    def compute_metrics(self, results: list) -> Dict[str, float]:
        names = list(self.dataset_meta['classes'])
        total = {}
        for part in results:
            for key, conf in part.items():
                total[key] = total.get(key, 0) + np.asarray(conf)
        if not self.datasets:
            conf = total.get('', np.zeros((len(names), len(names)), np.int64))
            return self._summary(conf, names, '')
        metrics = OrderedDict()
        per_set = OrderedDict()
        for name in self.datasets:
            conf = total.get(name, np.zeros((len(names), len(names)),
                                            np.int64))
            per_set[name] = self._summary(conf, names, f'{name}/')
        metrics['mIoU'] = round(float(np.mean(
            [m[f'{n}/mIoU'] for n, m in per_set.items()])), 2)
        for m in per_set.values():
            metrics.update(m)
        return metrics


def metrics_record(metrics: dict) -> dict:
    """``{"mIoU": .., "mAcc": .., "aAcc": .., "per_class": {name: IoU}}``
    from the runner's metric dict (values in percent). With several target
    sets, ``per_class`` is ``{set: {name: IoU}}`` (``all`` for the metric
    over the whole test set); NaN becomes null."""
    def finite(value):  # NaN -> null (strict JSON has no NaN)
        return None if isinstance(value, float) and value != value else value

    record = {k: finite(v) for k, v in metrics.items()
              if not k.startswith('IoU.') and '/IoU.' not in k}
    per_class = {}
    for key, value in metrics.items():
        if key.startswith('IoU.') or '/IoU.' in key:
            prefix, _, name = key.rpartition('IoU.')
            per_class.setdefault(prefix.rstrip('/') or 'all',
                                 {})[name] = finite(value)
    if list(per_class) == ['all']:
        record['per_class'] = per_class['all']
    else:
        record['per_class'] = per_class
    return record
