"""Confusion-matrix IoU: the evaluation protocol of METHOD.md section 3."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, label: Tensor, num_classes: int,
                     ignore_index: int = 255) -> Tensor:
    """Confusion matrix [K, K] (rows: ground truth, columns: prediction).

    Runs on the tensors' device; pixels labelled ``ignore_index`` (or any
    label outside 0..K-1) are left out.
    """
    label = label.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (label >= 0) & (label < num_classes) & (label != ignore_index)
    idx = label[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray,
                       classes: Optional[Sequence[int]] = None
                       ) -> Dict[str, np.ndarray]:
    """Per-class IoU and accuracy, and their means, from a confusion matrix.

    IoU_c = TP / (TP + FP + FN) accumulated over the whole set; classes with
    an empty union are NaN and left out of the mean (mmseg's ``nanmean``).

    Args:
        conf (ndarray): [K, K] confusion matrix.
        classes (Sequence[int], optional): Class indices the means are taken
            over (e.g. SYNTHIA's 16 or 13 classes). Default: all.
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    gt = conf.sum(1)
    union = gt + conf.sum(0) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    sel = np.arange(len(tp)) if classes is None else np.asarray(classes)
    with np.errstate(invalid='ignore'):
        miou = np.nanmean(iou[sel]) if np.isfinite(iou[sel]).any() else np.nan
        macc = np.nanmean(acc[sel]) if np.isfinite(acc[sel]).any() else np.nan
    aacc = tp.sum() / max(conf.sum(), 1)
    return dict(IoU=iou, Acc=acc, mIoU=miou, mAcc=macc, aAcc=aacc)
