"""EMA update and pseudo-labels of the Stage 1 teacher (METHOD.md 2.3)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_ddb.models.uda.teacher import (
    confidence_weight,
    ema_alpha,
    ema_update_,
    mixed_label_and_weight,
    pseudo_label_and_weight,
)


@pytest.mark.parametrize('iteration,expected', [(0, 0.0), (1, 0.5), (10, 1 - 1 / 11),
                                                (99, 0.99), (1000, 0.99)])
def test_ema_alpha_ramps_up_to_0_99(iteration, expected):
    assert ema_alpha(iteration) == pytest.approx(expected, abs=1e-12)


def test_ema_alpha_respects_max_alpha():
    assert ema_alpha(10**6, max_alpha=0.999) == 0.999
    assert ema_alpha(3, max_alpha=0.5) == 0.5
    with pytest.raises(ValueError):
        ema_alpha(-1)


def test_ema_update_on_hand_made_tensors():
    ema = [torch.tensor([1.0, 2.0]), torch.tensor([[10.0]])]
    student = [torch.tensor([3.0, 6.0]), torch.tensor([[0.0]])]
    counter = torch.tensor([7])  # an integer tensor is left alone
    ema_update_(ema + [counter], student + [torch.tensor([100])], alpha=0.75)
    assert torch.allclose(ema[0], torch.tensor([1.5, 3.0]))
    assert torch.allclose(ema[1], torch.tensor([[7.5]]))
    assert counter.item() == 7
    assert torch.equal(student[0], torch.tensor([3.0, 6.0]))  # the student is not touched


def test_ema_update_at_iteration_0_copies_the_student():
    student = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    ema = [torch.zeros(3, 4), torch.full((5, ), 9.0)]
    ema_update_(ema, list(student), ema_alpha(0))
    assert all(torch.equal(e, s.detach()) for e, s in zip(ema, student))
    assert not any(e.requires_grad for e in ema)


def test_ema_update_works_on_module_parameters_with_grad():
    student = torch.nn.Linear(3, 2)
    ema = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update_(list(ema.parameters()), list(student.parameters()), 0.9)
    for e, b, s in zip(ema.parameters(), before, student.parameters()):
        assert torch.allclose(e, 0.9 * b + 0.1 * s.detach())
    with pytest.raises(ValueError, match='same architecture'):
        ema_update_(list(ema.parameters()), [student.weight], 0.9)


def _logits_from(probs: torch.Tensor) -> torch.Tensor:
    return probs.log()


def test_quality_is_the_confident_fraction_of_the_whole_batch():
    # Sample 0: max probabilities 0.99, 0.6, 0.97, 0.9 -> 2 of 4 confident.
    # Sample 1: all 0.98 -> 4 of 4 confident.  Batch: 6 / 8 (not a per-sample weight).
    p0 = torch.tensor([[0.99, 0.6], [0.97, 0.9]])
    probs = torch.empty(2, 2, 2, 2)
    probs[0, 0] = p0
    probs[0, 1] = 1 - p0
    probs[1, 0] = 0.02
    probs[1, 1] = 0.98
    labels, quality = pseudo_label_and_weight(_logits_from(probs))
    assert torch.equal(labels, torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]]]))
    assert labels.dtype == torch.long
    assert quality.shape == () and quality.dtype == torch.float32
    assert quality.item() == pytest.approx(0.75)
    _, strict = pseudo_label_and_weight(_logits_from(probs), threshold=0.985)
    assert strict.item() == pytest.approx(1 / 8)


def test_pseudo_labels_from_half_precision_logits():
    logits = torch.tensor([[[[0.0]], [[8.0]], [[1.0]]]], dtype=torch.float16)
    labels, quality = pseudo_label_and_weight(logits)
    assert labels.item() == 1 and quality.item() == 1.0  # softmax(8 vs 0, 1) > 0.968


def test_mixed_label_and_weight():
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    source = torch.tensor([[[3, 255], [4, 5]]])
    pseudo = torch.tensor([[[7, 8], [9, 10]]])
    labels, weight = mixed_label_and_weight(mask, source, pseudo, torch.tensor(0.25))
    assert torch.equal(labels, torch.tensor([[[3, 8], [9, 5]]]))
    assert torch.equal(weight, torch.tensor([[[1.0, 0.25], [0.25, 1.0]]]))
    assert weight.dtype == torch.float32
    # A mask without the channel dimension and a float quality work too.
    labels2, weight2 = mixed_label_and_weight(mask[:, 0], source, pseudo, 0.25)
    assert torch.equal(labels2, labels) and torch.equal(weight2, weight)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.floats(0, 1),
       st.integers(0, 2**31))
def test_mixed_label_with_constant_masks(batch, height, width, quality, seed):
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(0, 19, (batch, height, width), generator=g)
    pseudo = torch.randint(0, 19, (batch, height, width), generator=g)
    ones = torch.ones(batch, 1, height, width)
    labels, weight = mixed_label_and_weight(ones, source, pseudo, quality)
    assert torch.equal(labels, source) and torch.all(weight == 1)
    labels, weight = mixed_label_and_weight(ones * 0, source, pseudo, quality)
    assert torch.equal(labels, pseudo)
    assert torch.all(weight == torch.tensor(quality, dtype=torch.float32))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0, 1), st.integers(1, 4))
def test_ema_update_is_a_convex_combination(seed, alpha, n):
    """Every EMA entry ends between its old value and the student's, equal
    to the exact formula, and alpha=1 leaves the EMA unchanged."""
    g = torch.Generator().manual_seed(seed)
    ema = [torch.randn(3, 4, generator=g, dtype=torch.float64)
           for _ in range(n)]
    student = [torch.randn(3, 4, generator=g, dtype=torch.float64)
               for _ in range(n)]
    before = [e.clone() for e in ema]
    ema_update_(ema, student, alpha)
    for new, old, s in zip(ema, before, student):
        assert torch.allclose(new, alpha * old + (1 - alpha) * s)
        lo, hi = torch.minimum(old, s), torch.maximum(old, s)
        assert torch.all(new >= lo - 1e-12) and torch.all(new <= hi + 1e-12)
        if alpha == 1:
            assert torch.equal(new, old)


def test_the_threshold_is_inclusive_and_pixel_mode_masks():
    # Two classes with equal logits: every pixel has confidence exactly 0.5.
    logits = torch.zeros(1, 2, 2, 2)
    _, at = pseudo_label_and_weight(logits, threshold=0.5)
    assert at.item() == 1.0  # >= : a pixel on the threshold counts
    _, above = pseudo_label_and_weight(logits, threshold=0.5 + 1e-6)
    assert above.item() == 0.0
    # 'pixel': the confident pixels weigh 1, the others 0 (not a batch scalar)
    p0 = torch.tensor([[0.99, 0.6], [0.97, 0.9]])
    probs = torch.stack([p0, 1 - p0]).unsqueeze(0)
    _, weight = pseudo_label_and_weight(_logits_from(probs), mode='pixel')
    assert torch.equal(weight, torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]))
    _, ratio = pseudo_label_and_weight(_logits_from(probs))
    assert ratio.shape == () and ratio.item() == pytest.approx(0.5)
    assert torch.equal(confidence_weight(torch.tensor([[0.5, 0.25]]), 0.5, 'pixel'),
                       torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="pseudo_weight='soft'"):
        confidence_weight(p0, 0.9, mode='soft')


def test_mixed_label_with_per_pixel_weights():
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    source = torch.tensor([[[3, 4], [5, 6]]])
    pseudo = torch.tensor([[[7, 8], [9, 10]]])
    pixel = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    _, weight = mixed_label_and_weight(mask, source, pseudo, pixel)
    assert torch.equal(weight, torch.tensor([[[1.0, 1.0], [0.0, 1.0]]]))
