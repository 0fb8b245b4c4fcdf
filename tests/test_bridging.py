"""Bridging masks, mixing and photometric augmentation (METHOD.md 2.2)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_ddb.models.uda.bridging import (
    BLUR_MODES,
    blur_kernel_size,
    class_mask,
    cut_mask,
    make_mask,
    mix,
    photometric_augment,
)

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _normalise(x01: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x01 * 255 - mean) / std


def _denormalise(img: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (img * std + mean) / 255


def _box_extent(masks: torch.Tensor):
    """Rows and columns covered by each mask [B, 1, H, W] -> (rows [B, H], cols [B, W])."""
    return masks[:, 0].amax(dim=2).bool(), masks[:, 0].amax(dim=1).bool()


# --------------------------------------------------------------------------- cut mask


def test_cut_mask_is_one_box_of_area_0_4_inside_the_crop():
    size = 512
    masks = cut_mask(100, size, size, generator=_gen())
    assert masks.shape == (100, 1, size, size) and masks.dtype == torch.float32
    assert torch.all((masks == 0) | (masks == 1))
    rows, cols = _box_extent(masks)
    box_h, box_w = rows.sum(1), cols.sum(1)
    # One axis-aligned rectangle: the covered pixels are exactly rows x cols ...
    assert torch.equal(masks[:, 0].sum((1, 2)), (box_h * box_w).float())
    # ... and the covered rows and columns are contiguous.
    for covered in (rows, cols):
        first = covered.float().argmax(1)
        last = covered.shape[1] - 1 - covered.flip(1).float().argmax(1)
        assert torch.equal(last - first + 1, covered.sum(1))
    h = box_h / size
    w = box_w / size
    assert h.min() >= 0.4 - 0.5 / size and h.max() <= 1.0
    # Each box is round(h H) x round(0.4 / h W): area 0.4 up to the rounding of each side.
    area = h * w
    assert (area - 0.4).abs().max() <= 0.5 / size * (h + w).max() + 0.25 / size**2
    assert abs(area.mean().item() - 0.4) < 1e-3


def test_cut_mask_height_follows_0_4_to_the_u():
    size = 128
    masks = cut_mask(2000, size, size, generator=_gen(1))
    rows, _ = _box_extent(masks)
    h = rows.sum(1).float() / size
    # h = 0.4 ** u with u ~ U(0, 1): quantile q of h is 0.4 ** (1 - q).
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(torch.quantile(h, q).item() - 0.4**(1 - q)) < 0.03
    # Tall and wide boxes are both common: not a square box.
    assert (h > 0.9).float().mean() > 0.05 and (h < 0.45).float().mean() > 0.05


def test_cut_mask_position_is_uniform_and_reaches_every_edge():
    size = 64
    masks = cut_mask(2000, size, size, generator=_gen(2))
    rows, cols = _box_extent(masks)
    top = rows.float().argmax(1)
    # Boxes touch all four edges of the crop in some draws.
    assert rows[:, 0].any() and rows[:, -1].any() and cols[:, 0].any() and cols[:, -1].any()
    # Given the box height, the top offset is uniform on [0, H - box_h].
    slack = size - rows.sum(1)
    relative = (top.float() + 0.5) / (slack + 1).float()
    assert abs(relative.mean().item() - 0.5) < 0.03
    # Boxes that fill a whole side start at 0 on that side.
    assert torch.all(top[slack == 0] == 0)


def test_cut_mask_seeded_generator_is_deterministic():
    a = cut_mask(4, 32, 48, generator=_gen(7))
    b = cut_mask(4, 32, 48, generator=_gen(7))
    c = cut_mask(4, 32, 48, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(8, 96), st.integers(8, 96), st.integers(0, 2**31))
def test_cut_mask_area_for_any_crop(batch, height, width, seed):
    masks = cut_mask(batch, height, width, generator=_gen(seed))
    rows, cols = _box_extent(masks)
    box_h, box_w = rows.sum(1).float(), cols.sum(1).float()
    assert torch.equal(masks[:, 0].sum((1, 2)), box_h * box_w)
    h = box_h / height
    # round(h H) with h in [0.4, 1], and round(0.4 / h W) for the width.
    assert torch.all(box_h >= math.floor(0.4 * height)) and torch.all(box_h <= height)
    assert torch.all(box_w <= width)
    assert torch.all((h * box_w / width - 0.4).abs() <= 0.5 * h / width + 0.5 / height)


# --------------------------------------------------------------------------- class mask


def _quadrant_labels(values):
    labels = torch.empty(8, 8, dtype=torch.long)
    labels[:, :] = values[0]
    labels[:4, :4] = values[1]
    labels[:4, 4:] = values[2]
    labels[4:, :4] = values[3]
    labels[4:, 6:] = values[4]
    return labels


def test_class_mask_picks_ceil_half_of_the_classes_including_255():
    values = (0, 3, 7, 255, 12)  # n = 5 -> 3 classes per draw
    labels = _quadrant_labels(values).expand(3000, 8, 8)
    masks = class_mask(labels, generator=_gen(0))
    assert masks.shape == (3000, 1, 8, 8) and masks.dtype == torch.float32
    per_class = [masks[:, 0][:, labels[0] == v] for v in values]  # [3000, pixels of v]
    # Each class is either entirely in or entirely out of the mask.
    assert all(torch.equal(p.amin(1), p.amax(1)) for p in per_class)
    chosen = torch.stack([p[:, 0] for p in per_class], dim=1)
    assert torch.all(chosen.sum(1) == 3)
    # Uniform without replacement: every class, 255 included, is chosen 3/5 of the time.
    freq = chosen.mean(0)
    assert torch.all((freq - 0.6).abs() < 0.035), freq


@pytest.mark.parametrize('values,expected', [((1, 1, 1, 1, 1), 1), ((1, 2, 2, 2, 2), 1),
                                             ((1, 2, 3, 4, 4), 2), ((1, 2, 3, 4, 255), 3)])
def test_class_mask_counts_per_sample(values, expected):
    labels = _quadrant_labels(values).unsqueeze(0).repeat(50, 1, 1)
    masks = class_mask(labels, generator=_gen(3))[:, 0]
    num_picked = torch.stack([masks[i][labels[i] == v].amax() for i in range(50)
                              for v in labels[i].unique()]).view(50, -1).sum(1)
    assert torch.all(num_picked == expected)


def test_class_mask_samples_are_independent():
    labels = torch.stack([_quadrant_labels((0, 1, 2, 3, 4)), _quadrant_labels((5, 6, 7, 8, 9))])
    masks = class_mask(labels.repeat(200, 1, 1), generator=_gen(4))[:, 0]
    # Picked pixels are always among the sample's own classes, and draws differ.
    assert torch.all(masks.sum((1, 2)) > 0)
    assert len({tuple(m.flatten().tolist()) for m in masks[::2]}) > 1


# --------------------------------------------------------------------------- make_mask


def test_make_mask_dispatches_on_kind():
    labels = torch.randint(0, 4, (2, 16, 24), generator=_gen())
    for kind in ('cut', 'class'):
        mask = make_mask(kind, labels, generator=_gen())
        assert mask.shape == (2, 1, 16, 24) and mask.dtype == torch.float32
    assert torch.equal(make_mask('class', labels, _gen()), class_mask(labels, generator=_gen()))
    assert abs(make_mask('cut', labels, _gen()).mean().item() - 0.4) < 0.05
    with pytest.raises(ValueError, match=r"\('cut', 'class', 'none'\)"):
        make_mask('cutmix', labels)
    with pytest.raises(ValueError, match='zero'):
        make_mask('zero', labels)  # the original's CKD mask: CKD needs none


def test_no_bridging_mask_leaves_the_target_and_its_pseudo_labels():
    """``mask='none'`` (the no-bridging ablation): an all-zero mask, so the
    mixed image is the target, the label the pseudo-label and every pixel
    weighs the quality."""
    from mmseg_ddb.models.uda.teacher import mixed_label_and_weight
    labels = torch.randint(0, 4, (2, 6, 5), generator=_gen())
    mask = make_mask('none', labels, generator=_gen())
    assert mask.shape == (2, 1, 6, 5) and mask.dtype == torch.float32
    assert not mask.any()
    source, target = torch.rand(2, 3, 6, 5), torch.rand(2, 3, 6, 5)
    assert torch.equal(mix(mask, source, target), target)
    pseudo = torch.randint(0, 4, (2, 6, 5), generator=_gen(1))
    mixed, weight = mixed_label_and_weight(mask, labels, pseudo, 0.25)
    assert torch.equal(mixed, pseudo)
    assert torch.equal(weight, torch.full((2, 6, 5), 0.25))


# --------------------------------------------------------------------------- mix


def test_mix_takes_source_where_the_mask_is_one():
    mask = torch.zeros(1, 1, 2, 3)
    mask[0, 0, :, 1] = 1
    source = torch.full((1, 3, 2, 3), 2.0)
    target = torch.full((1, 3, 2, 3), -1.0)
    expected = torch.tensor([[-1.0, 2.0, -1.0]] * 2).expand(1, 3, 2, 3)
    assert torch.equal(mix(mask, source, target), expected)

    src_labels = torch.full((1, 2, 3), 5, dtype=torch.long)
    tgt_labels = torch.full((1, 2, 3), 255, dtype=torch.long)
    mixed = mix(mask, src_labels, tgt_labels)
    assert mixed.dtype == torch.long
    assert torch.equal(mixed, torch.tensor([[[255, 5, 255], [255, 5, 255]]]))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12),
       st.integers(0, 2**31), st.sampled_from([torch.float32, torch.float16, torch.float64]))
def test_mix_with_constant_masks_returns_source_or_target(batch, channels, height, width,
                                                          seed, dtype):
    g = _gen(seed)
    source = torch.randn(batch, channels, height, width, generator=g).to(dtype)
    target = torch.randn(batch, channels, height, width, generator=g).to(dtype)
    ones = torch.ones(batch, 1, height, width)
    out = mix(ones, source, target)
    assert out.dtype == dtype and torch.equal(out, source)
    assert torch.equal(mix(torch.zeros_like(ones), source, target), target)
    src_labels = torch.randint(0, 19, (batch, height, width), generator=g, dtype=torch.uint8)
    tgt_labels = torch.randint(0, 19, (batch, height, width), generator=g, dtype=torch.uint8)
    assert torch.equal(mix(ones, src_labels, tgt_labels), src_labels)
    assert mix(ones, src_labels, tgt_labels).dtype == torch.uint8
    assert torch.equal(mix(torch.zeros_like(ones), src_labels, tgt_labels), tgt_labels)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31))
def test_mix_with_random_mask_is_pixelwise(seed):
    g = _gen(seed)
    labels = torch.randint(0, 6, (2, 10, 14), generator=g)
    mask = make_mask('class', labels, generator=g)
    source = torch.randn(2, 3, 10, 14, generator=g)
    target = torch.randn(2, 3, 10, 14, generator=g)
    out = mix(mask, source, target)
    keep = mask.bool().expand_as(source)
    assert torch.equal(out[keep], source[keep]) and torch.equal(out[~keep], target[~keep])


# --------------------------------------------------------------------------- photometric


def test_blur_kernel_size_reproduces_the_1x51_bug():
    assert blur_kernel_size(512, 512, 'horizontal') == (1, 51)
    assert blur_kernel_size(512, 512, '2d') == (51, 51)
    assert blur_kernel_size(512, 1024, '2d') == (51, 103)
    assert blur_kernel_size(64, 128, 'horizontal') == (1, 7)
    assert BLUR_MODES == ('horizontal', '2d')
    with pytest.raises(ValueError, match='blur_mode'):
        blur_kernel_size(512, 512, 'vertical')


def test_photometric_without_jitter_or_blur_returns_the_input_exactly():
    img = torch.randn(4, 3, 32, 32, generator=_gen())
    out = photometric_augment(img, MEAN, STD, jitter_prob=0, blur_prob=0, generator=_gen())
    assert torch.equal(out, img)


def test_photometric_output_is_a_valid_normalised_image():
    img = _normalise(torch.rand(16, 3, 48, 48, generator=_gen()))
    out = photometric_augment(img, MEAN, STD, generator=_gen(1))
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.isfinite(out).all()
    x01 = _denormalise(out)
    assert x01.min() >= -1e-5 and x01.max() <= 1 + 1e-5
    assert not torch.equal(out, img)
    again = photometric_augment(img, MEAN, STD, generator=_gen(1))
    assert torch.equal(out, again)


def test_photometric_firing_rates_and_untouched_samples_are_exact():
    img = _normalise(torch.rand(2000, 3, 16, 16, generator=_gen()))

    def changed(out):
        return (out - img).abs().amax(dim=(1, 2, 3))

    jittered = changed(photometric_augment(img, MEAN, STD, blur_prob=0, generator=_gen(1)))
    # Fired samples change visibly, the others are bit-exact.
    assert torch.all((jittered == 0) | (jittered > 1e-3))
    assert abs((jittered > 0).float().mean().item() - 0.8) < 0.03

    img = _normalise(torch.rand(2000, 3, 32, 32, generator=_gen()))  # a 3 x 3 kernel
    blurred = changed(photometric_augment(img, MEAN, STD, jitter_prob=0, blur_mode='2d',
                                          sigma_range=(1.0, 1.15), generator=_gen(2)))
    assert torch.all((blurred == 0) | (blurred > 1e-3))
    assert abs((blurred > 0).float().mean().item() - 0.5) < 0.03


def test_blur_touches_only_the_samples_it_fires_on():
    # Same seed, so the same per-sample decisions and jitter factors with and without blur:
    # the jittered samples that are not blurred must come back exactly as without blur.
    img = _normalise(torch.rand(400, 3, 32, 32, generator=_gen()))
    kwargs = dict(jitter_prob=1.0, sigma_range=(1.0, 1.15), blur_mode='2d')
    jitter_only = photometric_augment(img, MEAN, STD, blur_prob=0.0, generator=_gen(9), **kwargs)
    both = photometric_augment(img, MEAN, STD, blur_prob=0.5, generator=_gen(9), **kwargs)
    same = (both == jitter_only).flatten(1).all(1).float().mean().item()
    assert abs(same - 0.5) < 0.08


def test_jitter_touches_only_the_samples_it_fires_on():
    img = _normalise(torch.rand(400, 3, 32, 32, generator=_gen()))
    kwargs = dict(blur_prob=1.0, sigma_range=(1.0, 1.15), blur_mode='2d')
    blur_only = photometric_augment(img, MEAN, STD, jitter_prob=0.0, generator=_gen(9), **kwargs)
    both = photometric_augment(img, MEAN, STD, jitter_prob=0.5, generator=_gen(9), **kwargs)
    same = (both == blur_only).flatten(1).all(1).float().mean().item()
    assert abs(same - 0.5) < 0.08


def test_jitter_clamps_to_the_valid_range_whatever_the_op_order():
    # Bright and dark pixels; each call draws one op order, so try several.
    x01 = torch.rand(8, 3, 8, 8, generator=_gen()).round()
    x01[:, :, :4] = torch.rand(8, 3, 4, 8, generator=_gen(1))
    for seed in range(16):
        out = _denormalise(photometric_augment(_normalise(x01), MEAN, STD, jitter_prob=1,
                                               blur_prob=0, generator=_gen(seed)))
        assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5, seed


def test_jitter_keeps_a_grey_image_grey():
    # Saturation and hue do nothing to grey; brightness and contrast act on all channels.
    grey = _normalise(torch.rand(64, 1, 8, 8, generator=_gen()).expand(64, 3, 8, 8))
    out = _denormalise(photometric_augment(grey, MEAN, STD, jitter_prob=1, blur_prob=0,
                                           generator=_gen(5)))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)
    assert torch.allclose(out[:, 0], out[:, 2], atol=1e-5)
    assert not torch.allclose(out, _denormalise(grey), atol=1e-3)


def _stripes(along: str, size: int = 64) -> torch.Tensor:
    """An RGB image in [0, 1] that varies only along H (``'h'``) or only along W."""
    ramp = (torch.arange(size) % 5 / 4.0)
    x = ramp.view(1, 1, size, 1) if along == 'h' else ramp.view(1, 1, 1, size)
    return _normalise(x.expand(2, 3, size, size).contiguous())


def test_horizontal_blur_only_blurs_along_the_width():
    kwargs = dict(jitter_prob=0, blur_prob=1, sigma_range=(1.0, 1.0), generator=_gen())
    varies_along_h = _stripes('h')
    varies_along_w = _stripes('w')
    # The original's 1 x k(H) kernel leaves horizontal stripes unchanged ...
    out = photometric_augment(varies_along_h, MEAN, STD, blur_mode='horizontal', **kwargs)
    assert torch.allclose(out, varies_along_h, atol=1e-4)
    # ... but blurs vertical ones, and the 2d blur blurs both.
    out = photometric_augment(varies_along_w, MEAN, STD, blur_mode='horizontal', **kwargs)
    assert (out - varies_along_w).abs().max() > 0.1
    out = photometric_augment(varies_along_h, MEAN, STD, blur_mode='2d', **kwargs)
    assert (out - varies_along_h).abs().max() > 0.1


def test_blur_is_a_normalised_gaussian():
    # A point of light spreads into a symmetric blob that keeps its total intensity.
    x = torch.zeros(1, 3, 65, 65)
    x[..., 32, 32] = 1.0
    out = _denormalise(photometric_augment(_normalise(x), MEAN, STD, jitter_prob=0, blur_prob=1,
                                           sigma_range=(1.0, 1.0), blur_mode='2d',
                                           generator=_gen()))
    channel = out[0, 0]
    assert abs(channel.sum().item() - 1.0) < 1e-3
    assert torch.allclose(channel, channel.t(), atol=1e-5)
    assert torch.allclose(channel, channel.flip(0), atol=1e-5)
    # sigma = 1: neighbour / centre = exp(-1/2) along each axis.
    ratio = (channel[32, 33] / channel[32, 32]).item()
    assert abs(ratio - math.exp(-0.5)) < 1e-3


def test_photometric_rejects_bad_arguments():
    img = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match='blur_mode'):
        photometric_augment(img, MEAN, STD, blur_mode='vertical')
    with pytest.raises(ValueError, match='RGB'):
        photometric_augment(torch.zeros(1, 1, 8, 8), MEAN, STD)
    with pytest.raises(ValueError, match='mean and std'):
        photometric_augment(img, MEAN[:2], STD)
    with pytest.raises(ValueError, match='jitter_prob'):
        photometric_augment(img, MEAN, STD, jitter_prob=1.5)
