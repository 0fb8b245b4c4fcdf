"""Domain bridging for Stage 1 and Stage 2 (METHOD.md 2.2).

Pure tensor functions, batch-wise and device-agnostic, no config objects:

* Bridging masks (1 = source pixel): ``cut`` (region path, a box of 0.4 of the crop)
  and ``class`` (class path, half of the source classes, ClassMix). The original's
  ``zero`` mask of CKD (the bridged image is the target itself) needs no mask here:
  CKD augments the target crop directly.
* :func:`mix`: ``mask * source + (1 - mask) * target`` for images and label maps.
* :func:`photometric_augment`: the post-processing of the bridged image, colour jitter
  (p = 0.8) and Gaussian blur (p = 0.5), on the normalised batch.

The original built the bridged image per sample in CPU data workers; here it is done on
the whole batch on the device with the same statistics. Every random function takes an
optional ``torch.Generator``; all randomness is drawn through it, on its own device, and
moved to the data's device afterwards.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

MASK_KINDS = ('cut', 'class', 'none')
BLUR_MODES = ('horizontal', '2d')

DeviceLike = Union[torch.device, str, None]


def _draw_device(generator: Optional[torch.Generator], device: torch.device) -> torch.device:
    """Device on which random numbers are drawn: the generator's, else the data's."""
    return generator.device if generator is not None else device


def _rand(shape: Sequence[int], device: torch.device,
          generator: Optional[torch.Generator] = None,
          dtype: torch.dtype = torch.float32) -> Tensor:
    """``torch.rand`` drawn through ``generator`` and moved to ``device``."""
    draw = torch.rand(tuple(shape), generator=generator, dtype=dtype,
                      device=_draw_device(generator, device))
    return draw.to(device, non_blocking=True)


def _resolve_device(device: DeviceLike) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.empty(0).device  # the default device (torch.get_default_device needs 2.3)


# --------------------------------------------------------------------------- masks


def cut_mask(batch_size: int,
             height: int,
             width: int,
             area_ratio: float = 0.4,
             *,
             device: DeviceLike = None,
             generator: Optional[torch.Generator] = None) -> Tensor:
    """Region-path mask: one box of ``area_ratio`` of the crop per sample.

    Per sample, ``u ~ U(0, 1)``, height fraction ``h = area_ratio ** u`` (so
    ``h`` is in ``[area_ratio, 1]``) and width fraction ``w = area_ratio / h``. The box
    is ``round(h * H) x round(w * W)`` pixels at a uniform position fully inside the
    crop (METHOD.md 2.2).

    Args:
        batch_size (int): Number of masks B.
        height (int): Crop height H.
        width (int): Crop width W.
        area_ratio (float): Box area as a fraction of the crop, in (0, 1].
        device (torch.device | str | None): Device of the mask (default device if None).
        generator (torch.Generator | None): Source of randomness.

    Returns:
        Tensor: Float mask [B, 1, H, W], 1 inside the box (source pixels), 0 outside.
    """
    if not 0.0 < area_ratio <= 1.0:
        raise ValueError(f'area_ratio must be in (0, 1], got {area_ratio}')
    device = _resolve_device(device)
    # float32 keeps this MPS-friendly; pixel coordinates are exact in float32.
    u = _rand((batch_size, ), device, generator)
    h_frac = area_ratio**u
    w_frac = area_ratio / h_frac
    box_h = torch.round(h_frac * height).clamp_(0, height)
    box_w = torch.round(w_frac * width).clamp_(0, width)
    # Uniform integer offset in [0, H - box_h] (and the same for W).
    offsets = _rand((2, batch_size), device, generator)
    top = torch.floor(offsets[0] * (height - box_h + 1)).clamp_(max=height - box_h)
    left = torch.floor(offsets[1] * (width - box_w + 1)).clamp_(max=width - box_w)

    rows = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
    cols = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    top, left = top.view(-1, 1, 1), left.view(-1, 1, 1)
    inside_rows = (rows >= top) & (rows < top + box_h.view(-1, 1, 1))
    inside_cols = (cols >= left) & (cols < left + box_w.view(-1, 1, 1))
    return (inside_rows & inside_cols).unsqueeze(1).float()


def class_mask(labels: Tensor, *, generator: Optional[torch.Generator] = None) -> Tensor:
    """Class-path mask (ClassMix, source to target).

    Per sample, take the n unique values of the label map, **including the ignore
    value 255 if present** (the original counts it as a class, METHOD.md 6.8), pick
    ``ceil(n / 2)`` of them uniformly without replacement and mark their pixels.

    Args:
        labels (Tensor): Source label maps [B, H, W], integer.
        generator (torch.Generator | None): Source of randomness.

    Returns:
        Tensor: Float mask [B, 1, H, W], 1 on pixels of the picked classes.
    """
    if labels.dim() != 3:
        raise ValueError(f'expected labels [B, H, W], got shape {tuple(labels.shape)}')
    if labels.is_floating_point():
        raise ValueError(f'expected integer labels, got {labels.dtype}')
    batch_size = labels.shape[0]
    flat = labels.reshape(batch_size, -1).long()
    # Which of the 256 label values occur in each sample, then a random
    # order of the values: the present ones ranked first ``ceil(n / 2)`` are
    # picked. Batch-wise, with no data-dependent shape, so nothing waits for
    # the device (a torch.unique per sample would).
    present = torch.zeros(batch_size, 256, dtype=torch.bool, device=labels.device)
    present.scatter_(1, flat, True)
    scores = _rand((batch_size, 256), labels.device, generator)
    scores = scores.masked_fill(~present, 2.0)  # absent values rank last
    rank = scores.argsort(dim=1).argsort(dim=1)
    wanted = (present.sum(dim=1, keepdim=True) + 1) // 2
    picked = present & (rank < wanted)
    return picked.gather(1, flat).view_as(labels).unsqueeze(1).float()


def make_mask(kind: str, labels: Tensor, generator: Optional[torch.Generator] = None,
              area_ratio: float = 0.4) -> Tensor:
    """Bridging mask of the given kind for a batch of source label maps.

    Args:
        kind (str): ``'cut'`` (region path), ``'class'`` (class path) or
            ``'none'`` (no bridging, an ablation: an all-zero mask, so the
            mixed image is the target image and every pixel its
            pseudo-label).
        labels (Tensor): Source label maps [B, H, W]; only their shape and device
            matter for ``'cut'``.
        generator (torch.Generator | None): Source of randomness.

    Returns:
        Tensor: Float mask [B, 1, H, W], 1 = source pixel.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f'unknown bridging mask kind {kind!r}; valid kinds are {MASK_KINDS}')
    if labels.dim() != 3:
        raise ValueError(f'expected labels [B, H, W], got shape {tuple(labels.shape)}')
    batch_size, height, width = labels.shape
    if kind == 'cut':
        return cut_mask(batch_size, height, width, area_ratio, device=labels.device,
                        generator=generator)
    if kind == 'none':
        return torch.zeros(batch_size, 1, height, width, device=labels.device)
    return class_mask(labels, generator=generator)


def mix(mask: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """Bridge a source and a target batch through a mask (1 = source).

    Args:
        mask (Tensor): Mask [B, 1, H, W] (or [B, H, W] for label maps).
        source (Tensor): Float images [B, C, H, W] or integer label maps [B, H, W].
        target (Tensor): Same shape and dtype as ``source``.

    Returns:
        Tensor: ``mask * source + (1 - mask) * target`` for images; for label maps the
        source label where the mask is set, else the target label, with the dtype kept.
    """
    if source.shape != target.shape:
        raise ValueError(f'source {tuple(source.shape)} and target {tuple(target.shape)} '
                         'differ in shape')
    if source.is_floating_point():
        mask = mask.to(source.dtype)
        return mask * source + (1 - mask) * target
    keep_source = mask.bool()
    if keep_source.dim() == source.dim() + 1:
        keep_source = keep_source.squeeze(1)
    return torch.where(keep_source, source, target)


# --------------------------------------------------------------------------- photometric


def blur_kernel_size(height: int, width: int, blur_mode: str = 'horizontal') -> Tuple[int, int]:
    """Gaussian blur kernel size (kernel height, kernel width) for an H x W crop.

    DACS rule ``k(n) = floor(ceil(0.1 n) - 0.5 + ceil(0.1 n) % 2)`` (always odd).
    ``'2d'`` is the intended ``(k(H), k(W))``. ``'horizontal'`` reproduces the
    original's bug (METHOD.md 6.1), ``(k(3), k(H)) = (1, k(H))``: (1, 51) on a 512 crop.

    Args:
        height (int): Crop height H.
        width (int): Crop width W.
        blur_mode (str): ``'horizontal'`` or ``'2d'``.

    Returns:
        tuple[int, int]: (kernel height, kernel width).
    """
    if blur_mode not in BLUR_MODES:
        raise ValueError(f'unknown blur_mode {blur_mode!r}; valid modes are {BLUR_MODES}')

    def k(n: int) -> int:
        c = math.ceil(0.1 * n)
        return int(math.floor(c - 0.5 + c % 2))

    if blur_mode == 'horizontal':
        return k(3), k(height)
    return k(height), k(width)


def _gaussian_kernels(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels [B, size] for per-sample ``sigma`` [B]."""
    x = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - size // 2
    kernels = torch.exp(-x.square() / (2 * sigma.unsqueeze(1).square()))
    return kernels / kernels.sum(dim=1, keepdim=True)


def _blur_along(img: Tensor, kernels: Tensor, dim: int) -> Tensor:
    """Per-sample 1-D convolution of [B, C, H, W] along H (dim=2) or W (dim=3).

    A grouped conv with one group per (sample, channel), reflect padding.
    """
    batch, channels, height, width = img.shape
    size = kernels.shape[1]
    if size == 1:
        return img  # a normalised kernel of size 1 is the identity
    pad = size // 2
    padding = (pad, pad, 0, 0) if dim == 3 else (0, 0, pad, pad)
    padded = F.pad(img, padding, mode='reflect')
    weight = kernels.repeat_interleave(channels, dim=0)
    weight = weight.view(batch * channels, 1, 1, size) if dim == 3 else weight.view(
        batch * channels, 1, size, 1)
    out = F.conv2d(padded.reshape(1, batch * channels, *padded.shape[2:]), weight,
                   groups=batch * channels)
    return out.view(batch, channels, height, width)


def _gaussian_blur(img: Tensor, sigma: Tensor, kernel_size: Tuple[int, int]) -> Tensor:
    """Separable Gaussian blur of [B, C, H, W] with per-sample ``sigma`` [B]."""
    kernel_h, kernel_w = kernel_size
    out = _blur_along(img, _gaussian_kernels(sigma, kernel_w), dim=3)
    return _blur_along(out, _gaussian_kernels(sigma, kernel_h), dim=2)


def _jitter_ops(batch: int, strength: float, device: torch.device,
                generator: Optional[torch.Generator]) -> list:
    """The four colour-jitter ops of kornia 0.5's ColorJitter with per-sample factors."""
    # One uniform draw per (op, sample), mapped to [1 - s, 1 + s] (hue: [-s, s]).
    u = _rand((4, batch), device, generator)
    brightness = (1 - strength + 2 * strength * u[0]).view(-1, 1, 1, 1)
    contrast = (1 - strength + 2 * strength * u[1]).view(-1, 1, 1, 1)
    saturation = 1 - strength + 2 * strength * u[2]
    hue = (2 * u[3] - 1) * strength * 2 * math.pi

    return [
        lambda x: (x + (brightness - 1)).clamp(0, 1),
        lambda x: (x * contrast).clamp(0, 1),
        lambda x: kornia.enhance.adjust_saturation(x, saturation).clamp(0, 1),
        lambda x: kornia.enhance.adjust_hue(x, hue).clamp(0, 1),
    ]


def photometric_augment(img: Tensor,
                        mean: Sequence[float],
                        std: Sequence[float],
                        *,
                        jitter_prob: float = 0.8,
                        jitter_strength: float = 0.2,
                        blur_prob: float = 0.5,
                        sigma_range: Tuple[float, float] = (0.15, 1.15),
                        blur_mode: str = 'horizontal',
                        generator: Optional[torch.Generator] = None) -> Tensor:
    """Colour jitter and Gaussian blur of the bridged image (METHOD.md 2.2).

    The batch is de-normalised to [0, 1]. Each sample is colour-jittered with
    probability ``jitter_prob`` (kornia 0.5 ``ColorJitter`` semantics: brightness
    ``x + (b - 1)``, contrast ``x * c``, saturation and hue via kornia, factors
    ``U(1 - s, 1 + s)`` and hue ``U(-s, s) * 2 pi``, the four ops in one random order
    per call, clamped to [0, 1] after each), then blurred with probability
    ``blur_prob`` with ``sigma ~ U(sigma_range)`` and the kernel of
    :func:`blur_kernel_size`. The result is re-normalised. Samples that are neither
    jittered nor blurred come back bit-exact.

    Args:
        img (Tensor): Normalised images [B, 3, H, W], ``(x * 255 - mean) / std``, RGB.
        mean (Sequence[float]): Per-channel mean in 0-255 units (3 values).
        std (Sequence[float]): Per-channel std in 0-255 units (3 values).
        jitter_prob (float): Probability of colour jitter per sample.
        jitter_strength (float): Strength s of each of the four jitter ops.
        blur_prob (float): Probability of blur per sample.
        sigma_range (tuple[float, float]): Range of the blur sigma, in pixels.
        blur_mode (str): ``'horizontal'`` (original, 1 x k(H) kernel, METHOD.md 6.1)
            or ``'2d'`` (the intended k(H) x k(W) kernel).
        generator (torch.Generator | None): Source of randomness.

    Returns:
        Tensor: Augmented normalised images [B, 3, H, W], same dtype as ``img``.
    """
    if blur_mode not in BLUR_MODES:
        raise ValueError(f'unknown blur_mode {blur_mode!r}; valid modes are {BLUR_MODES}')
    if img.dim() != 4 or img.shape[1] != 3 or not img.is_floating_point():
        raise ValueError(f'expected a float RGB batch [B, 3, H, W], got {img.dtype} '
                         f'{tuple(img.shape)}')
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f'mean and std need 3 values (RGB), got {mean} and {std}')
    for name, prob in (('jitter_prob', jitter_prob), ('blur_prob', blur_prob)):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'{name} must be in [0, 1], got {prob}')
    if not 0.0 <= jitter_strength <= 1.0:
        raise ValueError(f'jitter_strength must be in [0, 1], got {jitter_strength}')
    if not 0.0 < sigma_range[0] <= sigma_range[1]:
        raise ValueError(f'sigma_range must satisfy 0 < low <= high, got {sigma_range}')

    device = img.device
    batch, _, height, width = img.shape
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    x = (img.float() * std_t + mean_t) / 255.0

    # Per-sample decisions: rand < p fires (the original: rand > 0.2 for p = 0.8).
    draws = _rand((3, batch), device, generator)
    do_jitter = (draws[0] < jitter_prob).view(-1, 1, 1, 1)
    do_blur = (draws[1] < blur_prob).view(-1, 1, 1, 1)
    sigma = sigma_range[0] + (sigma_range[1] - sigma_range[0]) * draws[2]

    if jitter_prob > 0:
        ops = _jitter_ops(batch, jitter_strength, device, generator)
        # The order is needed on the host: draw it on the CPU unless the generator lives
        # on the device (then reading it back is one tiny sync).
        order_device = generator.device if generator is not None else torch.device('cpu')
        order = torch.randperm(4, generator=generator, device=order_device)
        jittered = x
        for index in order.tolist():
            jittered = ops[index](jittered)
        x = torch.where(do_jitter, jittered, x)
    if blur_prob > 0:
        blurred = _gaussian_blur(x, sigma, blur_kernel_size(height, width, blur_mode))
        x = torch.where(do_blur, blurred, x)

    out = ((x * 255.0 - mean_t) / std_t).to(img.dtype)
    return torch.where(do_jitter | do_blur, out, img)
