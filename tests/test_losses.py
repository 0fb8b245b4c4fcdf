"""Weighted cross-entropy and its normalisation (METHOD.md 2.3, 6.13)."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_ddb.models.losses import weighted_cross_entropy

# Class 1 has probability 3/4 wherever the logits are (0, log 3).
LOG3 = math.log(3.0)
CE_CLASS0 = -math.log(0.25)
CE_CLASS1 = -math.log(0.75)


def _example():
    """1 x 2 x 2 x 2 logits and labels [[0, 1], [1, 255]]."""
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = LOG3
    labels = torch.tensor([[[0, 1], [1, 255]]])
    return logits, labels


def test_original_reduction_counts_ignored_pixels():
    logits, labels = _example()
    loss = weighted_cross_entropy(logits, labels, None)
    # Sum over the 3 valid pixels, divided by all 4 pixels.
    assert loss.item() == pytest.approx((CE_CLASS0 + 2 * CE_CLASS1) / 4, rel=1e-6)
    assert loss.shape == () and loss.dtype == torch.float32


def test_avg_non_ignore_divides_by_valid_pixels():
    logits, labels = _example()
    loss = weighted_cross_entropy(logits, labels, None, avg_non_ignore=True)
    assert loss.item() == pytest.approx((CE_CLASS0 + 2 * CE_CLASS1) / 3, rel=1e-6)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels, ignore_index=255).item())


def test_pixel_weights_scale_each_pixel():
    logits, labels = _example()
    weight = torch.tensor([[[1.0, 0.5], [2.0, 7.0]]])  # the ignored pixel's weight is moot
    expected = CE_CLASS0 + 0.5 * CE_CLASS1 + 2.0 * CE_CLASS1
    assert weighted_cross_entropy(logits, labels, weight).item() == pytest.approx(
        expected / 4, rel=1e-6)
    assert weighted_cross_entropy(logits, labels, weight, avg_non_ignore=True).item() == \
        pytest.approx(expected / 3, rel=1e-6)
    # A uniform quality weight scales the loss.
    full = weighted_cross_entropy(logits, labels, None)
    half = weighted_cross_entropy(logits, labels, torch.full((1, 2, 2), 0.5))
    assert half.item() == pytest.approx(full.item() / 2, rel=1e-6)


def test_custom_ignore_index():
    logits, labels = _example()
    labels = labels.clone()
    labels[0, 1, 1] = 1  # valid now
    labels[0, 0, 0] = -1
    loss = weighted_cross_entropy(logits, labels, None, ignore_index=-1)
    assert loss.item() == pytest.approx(3 * CE_CLASS1 / 4, rel=1e-6)


def test_all_ignored_gives_zero_for_both_reductions():
    logits, _ = _example()
    labels = torch.full((1, 2, 2), 255)
    assert weighted_cross_entropy(logits, labels, None).item() == 0.0
    assert weighted_cross_entropy(logits, labels, None, avg_non_ignore=True).item() == 0.0


def test_logits_are_resized_to_the_label_size():
    # Constant logits stay constant under bilinear resizing.
    logits = torch.zeros(2, 2, 3, 5, dtype=torch.float16)
    logits[:, 1] = LOG3
    labels = torch.ones(2, 12, 20, dtype=torch.long)
    loss = weighted_cross_entropy(logits, labels, None)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(CE_CLASS1, rel=1e-3)
    # Non-constant logits: the same as resizing by hand (bilinear, align_corners=False).
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, generator=g)
    labels = torch.randint(0, 4, (2, 12, 20), generator=g)
    resized = F.interpolate(logits, size=(12, 20), mode='bilinear', align_corners=False)
    assert weighted_cross_entropy(logits, labels, None).item() == pytest.approx(
        F.cross_entropy(resized, labels).item(), rel=1e-6)


def test_gradient_flows_to_the_logits_only_through_valid_weighted_pixels():
    logits, labels = _example()
    logits.requires_grad_(True)
    weight = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
    weighted_cross_entropy(logits, labels, weight).backward()
    assert torch.all(logits.grad[0, :, 0, 0] == 0)  # weight 0
    assert torch.all(logits.grad[0, :, 1, 1] == 0)  # ignored
    assert torch.all(logits.grad[0, :, 0, 1] != 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(2, 6), st.integers(1, 8), st.integers(1, 8),
       st.integers(0, 2**31))
def test_without_ignored_pixels_both_reductions_match_torch_mean(batch, classes, height, width,
                                                                 seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, height, width, generator=g)
    labels = torch.randint(0, classes, (batch, height, width), generator=g)
    expected = F.cross_entropy(logits, labels).item()
    ones = torch.ones(batch, height, width)
    assert weighted_cross_entropy(logits, labels, ones).item() == pytest.approx(expected, rel=1e-5)
    assert weighted_cross_entropy(logits, labels, None, avg_non_ignore=True).item() == \
        pytest.approx(expected, rel=1e-5)
