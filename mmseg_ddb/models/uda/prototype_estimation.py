"""Prototype estimation (DDB, METHOD.md 2.4): what ``cal_prototype.py`` computes.

Pure tensor functions, device-agnostic, no config objects: per (image, class) mean
features over the predicted pixels, aggregated into a capped running mean per class.
The feature dimension is never hard-coded: it is read from the tensors.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .teacher import hard_label


def _check_features_labels(features: Tensor, labels: Tensor) -> None:
    if features.dim() != 4 or labels.dim() != 3:
        raise ValueError('expected features [B, D, H, W] and labels [B, H, W], got '
                         f'{tuple(features.shape)} and {tuple(labels.shape)}')
    if features.shape[0] != labels.shape[0] or features.shape[2:] != labels.shape[1:]:
        raise ValueError(f'features {tuple(features.shape)} and labels '
                         f'{tuple(labels.shape)} differ in batch or spatial size')


def class_pixel_counts(labels: Tensor, num_classes: int) -> Tensor:
    """Number of pixels of each class in each image.

    Args:
        labels (Tensor): Labels [B, H, W]; values outside [0, K) are ignored.
        num_classes (int): Number of classes K.

    Returns:
        Tensor: Counts [B, K], long.
    """
    return _counts_of_bins(_class_bins(labels, num_classes), labels.shape[0], num_classes)


def _class_bins(labels: Tensor, num_classes: int) -> Tensor:
    """Bin of each pixel of labels [B, H, W], flattened [B*H*W]: one per (image,
    class), ``image * K + class``; ignored pixels go to an extra last bin, ``B * K``."""
    batch = labels.shape[0]
    flat = labels.reshape(batch, -1).long()
    keep = (flat >= 0) & (flat < num_classes)
    offsets = torch.arange(batch, device=labels.device).unsqueeze(1) * num_classes
    return torch.where(keep, flat + offsets,
                       torch.full_like(flat, batch * num_classes)).flatten()


def _counts_of_bins(bins: Tensor, batch: int, num_classes: int) -> Tensor:
    counts = torch.bincount(bins, minlength=batch * num_classes + 1)
    return counts[:-1].view(batch, num_classes)


def image_class_means(features: Tensor,
                      labels: Tensor,
                      num_classes: int,
                      min_pixels: int = 10) -> Tuple[Tensor, Tensor]:
    """Mean feature of each class in each image (METHOD.md 2.4).

    Computed in fp32 with one ``index_add_`` over all pixels of the batch, along the
    pixel axis of the features as they lie ([D, B*H*W]: no transposed copy): each sum
    adds the same pixels in the same order as a pixel-major ``index_add_`` would, so
    the result is the same to the bit, in a third of the time on the CPU.

    Args:
        features (Tensor): Features [B, D, H, W].
        labels (Tensor): Labels [B, H, W] (e.g. argmax of the logits); values
            outside [0, K), such as 255, are ignored.
        num_classes (int): Number of classes K.
        min_pixels (int): A (image, class) pair is valid only if the class has at
            least this many pixels in the image. Default: 10, as the original.

    Returns:
        tuple[Tensor, Tensor]:
            - means: [B, K, D] fp32; the mean feature where the class has pixels,
              zero where it has none.
            - valid: [B, K] bool; True where the class has >= ``min_pixels``
              pixels in the image.
    """
    _check_features_labels(features, labels)
    batch, dim = features.shape[:2]
    index = _class_bins(labels, num_classes)  # [B*N]; the ignore bin is dropped below
    counts = _counts_of_bins(index, batch, num_classes)  # [B, K]
    pixels = features.float().transpose(0, 1).reshape(dim, -1)  # [D, B*N]

    sums = features.new_zeros(dim, batch * num_classes + 1, dtype=torch.float32)
    sums.index_add_(1, index, pixels)
    sums = sums[:, :-1].t()  # [B*K, D]
    means = sums.reshape(batch, num_classes, dim) / counts.clamp(min=1).unsqueeze(-1)
    return means, counts >= min_pixels


def usable_vectors(means: Tensor, valid: Tensor) -> Tensor:
    """Which (image, class) vectors enter the prototypes: valid and not all zero.

    Args:
        means (Tensor): Mean features [B, K, D].
        valid (Tensor): Validity mask [B, K].

    Returns:
        Tensor: Mask [B, K], bool.
    """
    # The original skips all-zero vectors (e.g. a class whose ReLU features are 0).
    return valid.bool() & means.ne(0).any(dim=-1)


@torch.no_grad()
def update_prototypes_(prototypes: Tensor,
                       counts: Tensor,
                       means: Tensor,
                       valid: Tensor,
                       cap: int = 3000) -> None:
    """Capped running mean of the prototypes, in place (METHOD.md 2.4).

    Each usable vector x of class c (see :func:`usable_vectors`), in batch order:
    ``v_c <- (v_c * n_c + x) / (n_c + 1)``, then ``n_c <- min(n_c + 1, cap)``.
    After ``cap`` vectors the update is an EMA with weight ``1 / (cap + 1)``.
    Vectors of different classes are independent, so each image is applied to all
    classes at once; only the loop over the batch remains.

    Args:
        prototypes (Tensor): Prototypes [K, D], updated in place.
        counts (Tensor): Number of vectors seen per class [K], long, updated in
            place (saturates at ``cap``).
        means (Tensor): Per-image class means [B, K, D].
        valid (Tensor): Validity mask [B, K], bool.
        cap (int): Saturation of the counts. Default: 3000, as the original.
    """
    if means.dim() != 3 or means.shape[1:] != prototypes.shape:
        raise ValueError(f'means {tuple(means.shape)} do not match prototypes '
                         f'{tuple(prototypes.shape)}: expected [B, K, D]')
    if cap < 1:
        raise ValueError(f'cap must be >= 1, got {cap}')
    use = usable_vectors(means, valid).to(prototypes.device)
    means = means.to(device=prototypes.device, dtype=torch.float32)
    for x, use_b in zip(means, use):
        n = counts.to(torch.float32).unsqueeze(-1)
        updated = (prototypes.float() * n + x) / (n + 1)
        prototypes.copy_(torch.where(use_b.unsqueeze(-1), updated, prototypes.float()))
        counts.copy_(torch.where(use_b, (counts + 1).clamp(max=cap), counts))


class PrototypeEstimator:
    """Accumulates class prototypes from a model's features and logits.

    What ``tools/cal_prototypes/cal_prototype.py`` does per batch (METHOD.md 2.4):
    labels are the argmax of the logits (no threshold), each (image, class) with at
    least ``min_pixels`` predicted pixels gives a mean feature, and the prototypes
    are the capped running mean of these vectors. Classes never predicted keep a
    zero prototype.

    Args:
        num_classes (int): Number of classes K.
        feature_dim (int): Feature dimension D.
        min_pixels (int): Minimum predicted pixels of a class in an image.
            Default: 10.
        cap (int): Saturation of the running-mean counts. Default: 3000.
        device (torch.device | str, optional): Device of the buffers.

    Attributes:
        prototypes (Tensor): [K, D] fp32.
        counts (Tensor): [K] long, running-mean counts (capped).
        pixel_counts (Tensor): [K] long, predicted pixels per class (for logging).
        image_counts (Tensor): [K] long, (image, class) vectors used (uncapped).
    """

    def __init__(self,
                 num_classes: int,
                 feature_dim: int,
                 min_pixels: int = 10,
                 cap: int = 3000,
                 device: Optional[Union[torch.device, str]] = None) -> None:
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.min_pixels = min_pixels
        self.cap = cap
        self.prototypes = torch.zeros(num_classes, feature_dim, device=device)
        self.counts = torch.zeros(num_classes, dtype=torch.long, device=device)
        self.pixel_counts = torch.zeros_like(self.counts)
        self.image_counts = torch.zeros_like(self.counts)

    @torch.no_grad()
    def update(self, features: Tensor, logits: Tensor) -> None:
        """Add one batch.

        Args:
            features (Tensor): Features [B, D, h, w]. If (h, w) differs from the
                logits' size, the features are upsampled bilinearly
                (``align_corners=False``) to it. The original upsamples both to
                the crop size; do that in the caller to reproduce it exactly.
            logits (Tensor): Logits [B, K, H, W].
        """
        if features.shape[1] != self.feature_dim or logits.shape[1] != self.num_classes:
            raise ValueError(f'expected features with {self.feature_dim} channels and '
                             f'logits with {self.num_classes}, got '
                             f'{tuple(features.shape)} and {tuple(logits.shape)}')
        if features.shape[2:] != logits.shape[2:]:
            features = F.interpolate(features.float(), size=logits.shape[2:],
                                     mode='bilinear', align_corners=False)
        labels = hard_label(logits)
        means, valid = image_class_means(features, labels, self.num_classes,
                                         self.min_pixels)
        update_prototypes_(self.prototypes, self.counts, means, valid, self.cap)
        device = self.counts.device
        self.pixel_counts += class_pixel_counts(labels, self.num_classes).sum(0).to(device)
        self.image_counts += usable_vectors(means, valid).sum(0).to(device)

    def result(self) -> Tensor:
        """Returns a copy of the prototypes [K, D]."""
        return self.prototypes.clone()
