"""Pixel-weighted cross-entropy with the original's normalisation (METHOD.md 2.3, 6.13)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor


def weighted_cross_entropy(logits: Tensor,
                           labels: Tensor,
                           weight: Optional[Tensor] = None,
                           *,
                           ignore_index: int = 255,
                           avg_non_ignore: bool = False) -> Tensor:
    """Per-pixel weighted cross-entropy, computed in fp32.

    Logits are resized bilinearly (``align_corners=False``) to the label size if they
    differ. Ignored pixels contribute 0. The original (mmseg 0.22.1) divides the
    weighted sum by **all** B*H*W pixels, ignored ones included (METHOD.md 6.13);
    ``avg_non_ignore=True`` divides by the number of non-ignored pixels instead.

    Args:
        logits (Tensor): Logits [B, C, h, w].
        labels (Tensor): Labels [B, H, W], integer.
        weight (Tensor | None): Pixel weights [B, H, W] (or broadcastable); None = 1.
        ignore_index (int): Label value that is ignored.
        avg_non_ignore (bool): Divide by the non-ignored pixels instead of all pixels.

    Returns:
        Tensor: The loss, a 0-dim float32 tensor.
    """
    if logits.dim() != 4 or labels.dim() != 3 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f'expected logits [B, C, h, w] and labels [B, H, W], got '
                         f'{tuple(logits.shape)} and {tuple(labels.shape)}')
    logits = logits.float()
    if logits.shape[2:] != labels.shape[1:]:
        logits = F.interpolate(logits, size=labels.shape[1:], mode='bilinear',
                               align_corners=False)
    loss = F.cross_entropy(logits, labels.long(), reduction='none', ignore_index=ignore_index)
    if weight is not None:
        loss = loss * weight.float()
    if avg_non_ignore:
        num_valid = (labels != ignore_index).sum().clamp(min=1)
        return loss.sum() / num_valid
    return loss.sum() / labels.numel()
