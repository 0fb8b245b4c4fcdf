"""Pseudo-label monitoring: how right the labels a stage trains on are.

Where the target training set has labels (the synthetic demo's, real
Cityscapes' train split) and ``uda.monitor_pseudo_labels`` is on, the
training steps compare the labels they train on with the target's own
labels: per iteration two scalars per source of labels (pixel accuracy and
mIoU of the batch, in %, to the log and TensorBoard), and a confusion matrix
per source summed over the stage (per-class IoU at the end, written by
``engine.PseudoLabelMonitorHook``). It is never part of a loss: it reads the
labels the step has already made, draws no random number and copies nothing
to the host.

The target's labels travel in each target sample's ``MONITOR_FIELD``
(``UDADataset(target_labels=True)``), a field no loss reads.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...evaluation.iou import iou_from_confusion
from .teacher import hard_label

#: the target sample's field holding its labels for monitoring only
MONITOR_FIELD = 'monitor_sem_seg'


def monitor_labels(data_samples: Sequence, size: Tuple[int, int],
                   ignore_index: int = 255) -> Optional[Tensor]:
    """The target batch's monitoring labels [B, H, W] (long), padded at the
    bottom and right with ``ignore_index`` to ``size`` as the preprocessor
    pads the images; None when the samples carry none."""
    if not data_samples or not all(MONITOR_FIELD in s for s in data_samples):
        return None
    labels = []
    for sample in data_samples:
        label = getattr(sample, MONITOR_FIELD).data[0].long()
        pad_h, pad_w = size[0] - label.shape[0], size[1] - label.shape[1]
        if pad_h or pad_w:
            label = F.pad(label, (0, pad_w, 0, pad_h), value=ignore_index)
        labels.append(label)
    return torch.stack(labels)


def plain_ensemble_label(softmax: Sequence[Tensor]) -> Tensor:
    """The ensemble label without rectification: the argmax of the mean of
    the teachers' softmaxes (``prototypes.ensemble_pseudo_label`` of the
    unrectified probabilities), taken on their sum (the same argmax; no
    stacked copy)."""
    total = softmax[0]
    for probs in softmax[1:]:
        total = total + probs
    return hard_label(total)


def batch_scores(conf: Tensor) -> Tuple[Tensor, Tensor]:
    """Pixel accuracy and mIoU (both in %, float tensors on ``conf``'s
    device) of confusion matrices [..., K, K] (rows: truth, columns:
    prediction), one value per leading index.

    The mIoU averages the classes whose union is not empty (mmseg's
    ``nanmean``). Both are 0 when a matrix counts no pixel (a batch without
    a confident pixel: its ``pl_confident_share`` is 0 too), so the log and
    its smoothed windows stay finite; the stage report says None there.
    """
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    total = conf.sum((-2, -1))
    union = conf.sum(-2) + conf.sum(-1) - tp
    acc = tp.sum(-1) / total.clamp(min=1)
    present = union > 0
    iou = (tp / union.clamp(min=1) * present).sum(-1) / \
        present.sum(-1).clamp(min=1)
    return (100 * acc).float(), (100 * iou).float()


class PseudoLabelMonitor:
    """Confusion matrices of the monitored label sources, summed over a
    stage (on the labels' device), and the per-iteration scalars.

    Args:
        num_classes (int): Classes of the segmentor.
        ignore_index (int): Label of unlabelled pixels.
        threshold (float, optional): The stage's confidence threshold, kept
            for the report.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 threshold: Optional[float] = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.totals: Dict[str, Tensor] = {}

    def add(self, sources: Dict[str, Tensor], label: Tensor,
            keep: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """Count each source's prediction [B, H, W] against ``label``
        [B, H, W] (only where ``keep[name]`` [B, H, W] is set, for the
        sources ``keep`` names) into the source's matrix: one ``bincount``
        for all of them.

        Returns:
            dict: ``pl_<name>_acc`` and ``pl_<name>_miou`` of this batch,
            per source.
        """
        k = self.num_classes
        label = label.reshape(-1).long()
        valid = (label >= 0) & (label < k) & (label != self.ignore_index)
        base = label * k
        index = []
        for i, (name, pred) in enumerate(sources.items()):
            counted = valid
            if keep is not None and name in keep:
                counted = valid & keep[name].reshape(-1)
            index.append((base + pred.reshape(-1).long().clamp(0, k - 1) +
                          i * k * k)[counted])
        conf = torch.bincount(torch.cat(index),
                              minlength=len(sources) * k * k).reshape(
                                  len(sources), k, k)
        acc, miou = batch_scores(conf)
        out = {}
        for i, name in enumerate(sources):
            if name in self.totals:
                self.totals[name] += conf[i]
            else:
                self.totals[name] = conf[i].clone()
            out[f'pl_{name}_acc'] = acc[i]
            out[f'pl_{name}_miou'] = miou[i]
        return out

    def state(self) -> Dict[str, Tensor]:
        """The summed confusion matrices (for a checkpoint or the report)."""
        return dict(self.totals)

    def load_state(self, totals: Dict[str, Tensor]) -> None:
        """Continue from ``totals`` (a resumed stage)."""
        self.totals = {k: v.clone() for k, v in totals.items()}


def monitor_self_training(monitor: PseudoLabelMonitor, confidence: Tensor,
                          pseudo: Tensor, label: Tensor,
                          threshold: float) -> Dict[str, Tensor]:
    """Stage 1: the EMA teacher's pseudo-labels ``pseudo`` [B, H, W] on all
    labelled pixels (``teacher``) and on those whose ``confidence`` (the
    maximum softmax probability [B, H, W], as the step computes it) is at
    or above ``threshold`` (``teacher_confident``).

    Returns:
        dict: the two sources' scalars and ``pl_confident_share``, the share
        of the labelled pixels at or above the threshold.
    """
    confident = confidence >= threshold
    out = monitor.add(dict(teacher=pseudo, teacher_confident=pseudo), label,
                      keep=dict(teacher_confident=confident))
    labelled = label != monitor.ignore_index
    out['pl_confident_share'] = (confident & labelled).sum() / \
        labelled.sum().clamp(min=1)
    return out


def monitor_distillation(monitor: PseudoLabelMonitor,
                         teacher_names: Sequence[str],
                         teacher_logits: Sequence[Tensor],
                         teacher_softmax: Sequence[Tensor], rectified: Tensor,
                         label: Tensor) -> Dict[str, Tensor]:
    """Stage 2: each teacher's own label (the argmax of its logits
    [B, C, H, W], source ``<name>``), the plain 50/50 ensemble of their
    softmaxes before rectification (``plain``) and the rectified ensemble
    the student trains on (``rectified`` [B, H, W])."""
    sources = {name: hard_label(z)
               for name, z in zip(teacher_names, teacher_logits)}
    sources.update(plain=plain_ensemble_label(teacher_softmax),
                   rectified=rectified)
    return monitor.add(sources, label)


#: per stage kind, the monitored source of the labels the student trains on
#: (Stage 1 trains on every target pixel, weighted; Stage 2 on the
#: rectified ensemble)
TRAINED_ON = ('teacher', 'rectified')


def monitor_report(totals: Dict[str, Tensor], classes: Sequence[str],
                   threshold: Optional[float] = None) -> dict:
    """The stage's pseudo-label report from its summed confusion matrices.

    Returns:
        dict: ``threshold``, ``trained_on`` (the source the student trained
        on, see :data:`TRAINED_ON`), ``confident_share`` (Stage 1: the share
        of labelled pixels at or above the threshold, else None) and
        ``sources``: per source ``aAcc`` and ``mIoU`` (%), ``pixels`` (the
        labelled pixels counted) and ``per_class`` (``{class: IoU %}``,
        None for a class with an empty union).
    """
    sources = {}
    for name, conf in totals.items():
        conf = conf.detach().cpu().double().numpy()
        scores = iou_from_confusion(conf)
        sources[name] = dict(
            aAcc=_percent(scores['aAcc']) if conf.sum() else None,
            mIoU=_percent(scores['mIoU']), pixels=int(conf.sum()),
            per_class={str(c): _percent(v)
                       for c, v in zip(classes, scores['IoU'])})
    share = None
    if 'teacher' in totals and 'teacher_confident' in totals:
        seen = int(totals['teacher'].sum())
        share = int(totals['teacher_confident'].sum()) / seen if seen else None
    trained_on = next((s for s in TRAINED_ON if s in sources), None)
    return dict(threshold=threshold, trained_on=trained_on,
                confident_share=share, sources=sources)


def _percent(value) -> Optional[float]:
    value = float(value)
    return None if value != value else 100.0 * value
