"""Class prototypes and prototype rectification (DDB Stage 2).

Pure tensor functions, device-agnostic, no config objects:

* Prototype estimation (METHOD.md 2.4): per (image, class) mean features over the
  predicted pixels, aggregated into a capped running mean per class.
* Prototype rectification of the teachers' predictions (METHOD.md 2.5): weights
  ``softmax_c(-||f - P_c|| / T)`` multiply the probabilities (not renormalised by
  default, METHOD.md 6.6) or the logits, and the two teachers are averaged.

The feature dimension is never hard-coded: it is read from the tensors.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

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
    batch = labels.shape[0]
    flat = labels.reshape(batch, -1).long()
    keep = (flat >= 0) & (flat < num_classes)
    # One bin per (image, class); ignored pixels go to an extra last bin.
    offsets = torch.arange(batch, device=labels.device).unsqueeze(1) * num_classes
    index = torch.where(keep, flat + offsets, torch.full_like(flat, batch * num_classes))
    counts = torch.bincount(index.flatten(), minlength=batch * num_classes + 1)
    return counts[:-1].view(batch, num_classes)


def image_class_means(features: Tensor,
                      labels: Tensor,
                      num_classes: int,
                      min_pixels: int = 10) -> Tuple[Tensor, Tensor]:
    """Mean feature of each class in each image (METHOD.md 2.4).

    Computed in fp32 with one ``index_add_`` over all pixels of the batch.

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
    counts = class_pixel_counts(labels, num_classes)  # [B, K]

    flat_labels = labels.reshape(batch, -1).long()
    keep = (flat_labels >= 0) & (flat_labels < num_classes)  # [B, N]
    offsets = torch.arange(batch, device=labels.device).unsqueeze(1) * num_classes
    index = (flat_labels + offsets)[keep]  # [M]
    pixels = features.float().flatten(2).transpose(1, 2)[keep]  # [M, D]

    sums = features.new_zeros(batch * num_classes, dim, dtype=torch.float32)
    sums.index_add_(0, index, pixels)
    means = sums.view(batch, num_classes, dim) / counts.clamp(min=1).unsqueeze(-1)
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
        labels = logits.argmax(dim=1)
        means, valid = image_class_means(features, labels, self.num_classes,
                                         self.min_pixels)
        update_prototypes_(self.prototypes, self.counts, means, valid, self.cap)
        device = self.counts.device
        self.pixel_counts += class_pixel_counts(labels, self.num_classes).sum(0).to(device)
        self.image_counts += usable_vectors(means, valid).sum(0).to(device)

    def result(self) -> Tensor:
        """Returns a copy of the prototypes [K, D]."""
        return self.prototypes.clone()


def _linear_taps(in_size: int, out_size: int, align_corners: bool,
                 device: torch.device) -> Tuple[Tensor, Tensor]:
    """First source index and the weight of the second tap of every output
    position of 1-D linear interpolation, as ``F.interpolate(size=...)``
    computes them (the second tap is ``index + 1``, read from a map padded
    by one replicated row / column, which reproduces the border clamp)."""
    dst = torch.arange(out_size, dtype=torch.float64, device=device)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.)
    else:
        src = ((dst + 0.5) * (in_size / out_size) - 0.5).clamp(min=0)
    index = src.floor().long().clamp(max=in_size - 1)
    return index, src - index


def upsampled_squared_distances(features: Tensor,
                                  prototypes: Tensor,
                                  size: Tuple[int, int],
                                  align_corners: bool = False) -> Tensor:
    """``||up(f) - P_c||_2^2`` for the bilinearly upsampled features
    ``up(f)``, without materialising ``up(f)``.

    Bilinear upsampling is linear, so every term of
    ``||up(f)||^2 - 2 up(f).P_c + ||P_c||^2`` can be computed at the
    decoder's resolution and interpolated with the same four taps: the dot
    products with the prototypes (K maps instead of D) and the Gram products
    of each pixel with its right, lower and diagonal neighbours (ten maps).
    Everything is in float64, whose rounding (~1e-16 of ``||f||^2``) stays
    far below the fp32 rounding of the direct form, so distances near a
    prototype keep their precision. Equals
    ``torch.cdist(F.interpolate(features, size, mode='bilinear'), P)`` up to
    floating-point rounding, at a fraction of its time and memory.

    Args:
        features (Tensor): Features [B, D, h, w] at the decoder's resolution.
        prototypes (Tensor): Prototypes [K, D].
        size (tuple[int, int]): Output (H, W).
        align_corners (bool): As in the upsampling it replaces.

    Returns:
        Tensor: Squared distances [B, K, H, W], float64 (may be slightly
        negative from rounding where a pixel sits on a prototype).
    """
    f = features.double()
    protos = prototypes.to(f)
    h, w = f.shape[2:]
    yi, ly = _linear_taps(h, size[0], align_corners, f.device)
    xi, lx = _linear_taps(w, size[1], align_corners, f.device)
    padded = F.pad(f, (0, 1, 0, 1), mode='replicate')  # [B, D, h+1, w+1]
    corner = {(a, b): padded[:, :, a:a + h, b:b + w]
              for a in (0, 1) for b in (0, 1)}

    def dot(p, q):  # [B, h, w]
        return (corner[p] * corner[q]).sum(1)

    def gather(maps: Tensor) -> Tensor:  # [..., h, w] -> [..., H, W]
        return maps.index_select(-2, yi).index_select(-1, xi)

    row = [(1 - ly).view(-1, 1), ly.view(-1, 1)]  # [H, 1] weights a_0, a_1
    col = [(1 - lx).view(1, -1), lx.view(1, -1)]  # [1, W] weights b_0, b_1
    keys = list(corner)
    norm2 = 0
    for i, p in enumerate(keys):
        for q in keys[i:]:
            weight = row[p[0]] * row[q[0]] * col[p[1]] * col[q[1]]
            norm2 = norm2 + (1 if p == q else 2) * weight * gather(dot(p, q))
    # the cross term is linear in the features: interpolate its K maps
    cross = F.interpolate(torch.einsum('bdhw,kd->bkhw', f, protos), size=size,
                          mode='bilinear', align_corners=align_corners)
    dist2 = cross.mul_(-2).add_(norm2.unsqueeze(1)).add_(
        protos.pow(2).sum(1).view(1, -1, 1, 1))
    return dist2


def rectification_weights(features: Tensor,
                          prototypes: Tensor,
                          temperature: float = 1.0,
                          size: Optional[Tuple[int, int]] = None,
                          align_corners: bool = False) -> Tensor:
    """Prototype weights ``softmax_c(-||f - P_c||_2 / T)`` (METHOD.md 2.5).

    Without ``size``: distances of the given features, in fp32 with exact
    pairwise differences (``torch.cdist`` without the matrix-product
    shortcut, which loses precision near a prototype). With ``size``: the
    distances of the features bilinearly upsampled to ``size`` (the teachers'
    features at the crop's resolution, as the original), computed by
    :func:`upsampled_squared_distances` in float64 without materialising
    the upsampled features. With the original temperature 1 the weights are
    nearly one-hot (METHOD.md 6.6).

    Args:
        features (Tensor): Features [B, D, h, w].
        prototypes (Tensor): Prototypes [K, D].
        temperature (float): Softmax temperature T > 0. Default: 1.0.
        size (tuple[int, int], optional): Upsample the features to this
            (H, W) first (bilinear).
        align_corners (bool): Of that upsampling. Default: False.

    Returns:
        Tensor: Weights [B, K, H, W] fp32, summing to 1 over K.
    """
    if features.dim() != 4 or prototypes.dim() != 2 or \
            features.shape[1] != prototypes.shape[1]:
        raise ValueError(f'features {tuple(features.shape)} and prototypes '
                         f'{tuple(prototypes.shape)} must be [B, D, H, W] and [K, D]')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    if size is not None and tuple(size) != tuple(features.shape[2:]):
        dist2 = upsampled_squared_distances(features, prototypes,
                                            tuple(size), align_corners)
        # the cancellation-prone sum is done in float64; the rest in fp32
        dist = dist2.float().clamp_(min=0).sqrt_()
        return torch.softmax(dist.div_(-temperature), dim=1)
    batch, dim, height, width = features.shape
    pixels = features.float().flatten(2).transpose(1, 2)  # [B, N, D]
    protos = prototypes.to(pixels).unsqueeze(0).expand(batch, -1, dim)  # [B, K, D]
    dist = torch.cdist(pixels, protos, compute_mode='donot_use_mm_for_euclid_dist')
    weights = torch.softmax(-dist / temperature, dim=-1)  # [B, N, K]
    return weights.transpose(1, 2).reshape(batch, -1, height, width)


def rectify_probabilities(probs: Tensor,
                          weights: Tensor,
                          renormalize: bool = False,
                          eps: float = 1e-12) -> Tensor:
    """Prototype-rectified probabilities ``weights * probs``.

    Args:
        probs (Tensor): Teacher probabilities [B, K, H, W].
        weights (Tensor): Rectification weights [B, K, H, W].
        renormalize (bool): Divide by the sum over classes. The original does not
            (METHOD.md 2.5, 6.6). Default: False.
        eps (float): Lower clamp of the sum when renormalising.

    Returns:
        Tensor: Rectified probabilities [B, K, H, W].
    """
    rectified = weights * probs
    if renormalize:
        rectified = rectified / rectified.sum(dim=1, keepdim=True).clamp(min=eps)
    return rectified


def rectify_logits(logits: Tensor, weights: Tensor) -> Tensor:
    """The ``rectify_on_prob=False`` variant: weights multiply the logits.

    Args:
        logits (Tensor): Teacher logits [B, K, H, W].
        weights (Tensor): Rectification weights [B, K, H, W].

    Returns:
        Tensor: Rectified logits [B, K, H, W], to be passed through a softmax.
    """
    return weights * logits


def ensemble_pseudo_label(probs_list: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    """Plain average of the teachers' (rectified) probabilities, then argmax.

    Args:
        probs_list (Sequence[Tensor]): One [B, K, H, W] tensor per teacher.

    Returns:
        tuple[Tensor, Tensor]: Labels [B, H, W] long and mean probabilities
        [B, K, H, W].
    """
    if len(probs_list) == 0:
        raise ValueError('ensemble_pseudo_label needs at least one teacher')
    mean_probs = torch.stack(list(probs_list)).mean(dim=0)
    return mean_probs.argmax(dim=1), mean_probs


def soft_distillation_loss(student_logits: Tensor,
                           teacher_logits_list: List[Tensor],
                           weights_list: List[Tensor],
                           temperature: float = 1.0,
                           loss_weight: float = 0.1) -> Tensor:
    """The unused ``soft_distill`` variant of METHOD.md 2.5.

    ``target = softmax(sum_t(w_t * z_t) / n_teachers / T)`` and
    ``loss = KL(target || softmax(z_s / T))`` summed, divided by B * H * W,
    times ``loss_weight * T^2``. The target carries no gradient.

    Args:
        student_logits (Tensor): Student logits z_s [B, K, H, W].
        teacher_logits_list (list[Tensor]): Teacher logits z_t, each [B, K, H, W].
        weights_list (list[Tensor]): Rectification weights w_t, each [B, K, H, W].
        temperature (float): Distillation temperature T. Default: 1.0.
        loss_weight (float): Default: 0.1, as the original ``soft_distill_w``.

    Returns:
        Tensor: Scalar loss.
    """
    if len(teacher_logits_list) == 0 or len(teacher_logits_list) != len(weights_list):
        raise ValueError('need as many weights as teacher logits, and at least one')
    height, width = student_logits.shape[2:]
    with torch.no_grad():
        combined = sum(w.float() * z.float()
                       for w, z in zip(weights_list, teacher_logits_list))
        target = torch.softmax(combined / len(teacher_logits_list) / temperature, dim=1)
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_student, target, reduction='batchmean') / (height * width)
    return kl * loss_weight * temperature**2
