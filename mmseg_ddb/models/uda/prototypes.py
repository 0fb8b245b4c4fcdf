"""Prototype rectification (DDB Stage 2; the estimation is in
:mod:`.prototype_estimation`).

Pure tensor functions, device-agnostic, no config objects:

* Prototype rectification of the teachers' predictions (METHOD.md 2.5): weights
  ``softmax_c(-||f - P_c|| / T)`` multiply the probabilities (not renormalised by
  default, METHOD.md 6.6) or the logits, and the two teachers are averaged.

The feature dimension is never hard-coded: it is read from the tensors.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .teacher import hard_label


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
    return hard_label(mean_probs), mean_probs


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
