"""Tests for prototype estimation and rectification (METHOD.md 2.4, 2.5, 6.6)."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_ddb.models.uda.prototype_estimation import (
    PrototypeEstimator,
    image_class_means,
    update_prototypes_,
)
from mmseg_ddb.models.uda.prototypes import (
    ensemble_pseudo_label,
    rectification_weights,
    rectify_logits,
    rectify_probabilities,
    soft_distillation_loss,
    upsampled_squared_distances,
)
from mmseg_ddb.utils.prototype_file import check_prototypes


def one_hot_logits(labels, num_classes, scale=5.0):
    """Logits [B, K, H, W] whose argmax is ``labels`` [B, H, W]."""
    return F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float() * scale


# --------------------------------------------------------------------------- means


def test_image_class_means_hand_example():
    labels = torch.tensor([[[0, 0, 1], [1, 255, 2]]])
    features = torch.tensor([[[[1., 3., 5.], [7., 100., 9.]],
                              [[2., 4., 6.], [8., 100., 10.]]]])  # [1, 2, 2, 3]
    means, valid = image_class_means(features, labels, num_classes=3, min_pixels=2)
    # class 0: pixels (1,2),(3,4); class 1: (5,6),(7,8); class 2 has 1 pixel;
    # the 255 pixel (100, 100) is ignored.
    expected = torch.tensor([[[2., 3.], [6., 7.], [9., 10.]]])
    assert torch.equal(means, expected)
    assert valid.tolist() == [[True, True, False]]


def test_image_class_means_matches_per_image_loop():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(3, 5, 6, 7, generator=gen)
    labels = torch.randint(0, 5, (3, 6, 7), generator=gen)
    labels[labels == 4] = 255  # class index 4 of 5 raw values becomes ignore
    labels[0, 0, 0] = -1  # negative labels are ignored too
    means, valid = image_class_means(features, labels, num_classes=4, min_pixels=10)
    for b in range(3):
        for c in range(4):
            mask = labels[b] == c
            assert valid[b, c] == (mask.sum() >= 10)
            if mask.any():
                expected = features[b][:, mask].mean(dim=1)
                torch.testing.assert_close(means[b, c], expected)
            else:
                assert not means[b, c].any()


def test_image_class_means_sums_bit_for_bit_as_pixel_major_index_add():
    """The sums along the features' own pixel axis equal, to the bit, the pixel-major
    ``index_add_`` of the gathered pixels (the formula the prototypes of the README's
    runs were computed with): same pixels, same order, per (image, class)."""
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(4, 16, 33, 35, generator=gen) * 100
    labels = torch.randint(0, 7, (4, 33, 35), generator=gen)
    labels[labels == 6] = 255
    means, _ = image_class_means(features, labels, num_classes=6)
    flat = labels.reshape(4, -1)
    keep = flat < 6
    index = (flat + torch.arange(4).unsqueeze(1) * 6)[keep]
    pixels = features.flatten(2).transpose(1, 2)[keep]
    sums = torch.zeros(4 * 6, 16).index_add_(0, index, pixels).view(4, 6, 16)
    counts = torch.stack([torch.bincount(f[k], minlength=6) for f, k in zip(flat, keep)])
    assert torch.equal(means, sums / counts.clamp(min=1).unsqueeze(-1))


def test_hard_label_is_argmax_with_the_first_maximum_on_ties():
    from mmseg_ddb.models.uda.teacher import hard_label
    scores = torch.randn(3, 5, 8, 9, generator=torch.Generator().manual_seed(2))
    scores[:, 3] = scores[:, 1]  # ties between classes 1 and 3
    scores[0, :, 0, 0] = 0.0     # all classes tie: class 0
    labels = hard_label(scores)
    assert torch.equal(labels, scores.argmax(dim=1))
    assert labels[0, 0, 0] == 0 and not (labels == 3).any()


def test_image_class_means_computes_in_fp32():
    features = torch.full((1, 3, 4, 4), 1.5, dtype=torch.bfloat16)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    means, valid = image_class_means(features, labels, num_classes=2)
    assert means.dtype == torch.float32
    assert torch.equal(means[0, 0], torch.full((3,), 1.5))
    assert valid.tolist() == [[True, False]]


def test_image_class_means_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match='spatial'):
        image_class_means(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), 3)


# ----------------------------------------------------------------------- estimator


def ten_and_nine_pixel_batch():
    """Two 5x4 images: image 0 has 10 px of class 0, 9 of class 1, 1 px
    of class 2; image 1 has 20 px of class 0. Features are constant per class."""
    labels = torch.full((2, 5, 4), 0, dtype=torch.long)
    flat0 = labels[0].view(-1)
    flat0[10:19] = 1
    flat0[19] = 2
    features = torch.zeros(2, 3, 5, 4)
    features[0][:, labels[0] == 0] = torch.tensor([1., 2., 3.]).unsqueeze(1)
    features[0][:, labels[0] == 1] = torch.tensor([7., 7., 7.]).unsqueeze(1)
    features[0][:, labels[0] == 2] = torch.tensor([9., 9., 9.]).unsqueeze(1)
    features[1] = torch.tensor([3., 4., 5.]).view(3, 1, 1)
    return features, labels


def test_estimator_hand_means_and_ten_pixel_rule():
    features, labels = ten_and_nine_pixel_batch()
    estimator = PrototypeEstimator(num_classes=3, feature_dim=3)
    estimator.update(features, one_hot_logits(labels, 3))
    protos = estimator.result()
    # class 0: image 0 gives (1,2,3), image 1 gives (3,4,5): mean (2,3,4)
    torch.testing.assert_close(protos[0], torch.tensor([2., 3., 4.]))
    # class 1 has 9 pixels, class 2 has 1: both skipped, prototypes stay zero
    assert not protos[1:].any()
    assert estimator.counts.tolist() == [2, 0, 0]
    assert estimator.image_counts.tolist() == [2, 0, 0]
    assert estimator.pixel_counts.tolist() == [30, 9, 1]
    # result() is a copy
    protos.add_(1)
    assert not estimator.prototypes[1:].any()


def test_estimator_skips_zero_vectors():
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    features = torch.zeros(2, 2, 4, 4)
    features[0] = torch.tensor([4., 6.]).view(2, 1, 1)  # image 1 is all zero
    estimator = PrototypeEstimator(num_classes=2, feature_dim=2)
    estimator.update(features, one_hot_logits(labels, 2))
    # the zero vector of image 1 would have halved the prototype
    torch.testing.assert_close(estimator.prototypes[0], torch.tensor([4., 6.]))
    assert estimator.counts.tolist() == [1, 0]
    assert estimator.image_counts.tolist() == [1, 0]


def test_estimator_upsamples_features_to_logit_size():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    features = torch.tensor([2., -1.]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    estimator = PrototypeEstimator(num_classes=2, feature_dim=2)
    estimator.update(features, one_hot_logits(labels, 2))
    torch.testing.assert_close(estimator.prototypes[0], torch.tensor([2., -1.]))
    assert estimator.pixel_counts.tolist() == [64, 0]


def test_estimator_rejects_wrong_channels():
    estimator = PrototypeEstimator(num_classes=2, feature_dim=3)
    with pytest.raises(ValueError, match='3 channels'):
        estimator.update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, 2))


# ------------------------------------------------------------------ running mean


def sequence_as_batch(values):
    """Scalars x_i -> means [len, 1, 2] holding (x_i, -x_i), all valid."""
    x = torch.tensor(values, dtype=torch.float32)
    return torch.stack([x, -x], dim=-1).unsqueeze(1), torch.ones(len(values), 1, dtype=torch.bool)


def test_running_mean_small_cap_3():
    protos, counts = torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)
    means, valid = sequence_as_batch([1., 2., 3., 4., 5.])
    update_prototypes_(protos, counts, means, valid, cap=3)
    # v3 = mean(1,2,3) = 2 with n=3; v4 = (3*2+4)/4 = 2.5; n stays 3;
    # v5 = (3*2.5+5)/4 = 3.125 (the plain mean would be 3)
    torch.testing.assert_close(protos, torch.tensor([[3.125, -3.125]]))
    assert counts.tolist() == [3]


def test_running_mean_cap_2_exact_ema():
    protos, counts = torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)
    x1, x2, x3, x4 = 1., 2., 3., 6.
    means, valid = sequence_as_batch([x1, x2, x3, x4])
    update_prototypes_(protos, counts, means, valid, cap=2)
    v2 = (x1 + x2) / 2
    v3 = (v2 * 2 + x3) / 3  # n=2: still the plain mean of x1..x3
    v4 = (v3 * 2 + x4) / 3  # n capped at 2: EMA with weight 1/3
    assert v4 != (x1 + x2 + x3 + x4) / 4
    torch.testing.assert_close(protos, torch.tensor([[v4, -v4]]))
    assert counts.tolist() == [2]


def test_running_mean_batch_equals_sequential_calls():
    gen = torch.Generator().manual_seed(1)
    means = torch.randn(4, 3, 5, generator=gen)
    valid = torch.rand(4, 3, generator=gen) > 0.3
    p_batch, n_batch = torch.zeros(3, 5), torch.zeros(3, dtype=torch.long)
    update_prototypes_(p_batch, n_batch, means, valid, cap=2)
    p_seq, n_seq = torch.zeros(3, 5), torch.zeros(3, dtype=torch.long)
    for b in range(4):
        for c in range(3):
            if valid[b, c]:
                p_seq[c] = (p_seq[c] * n_seq[c] + means[b, c]) / (n_seq[c] + 1)
                n_seq[c] = min(n_seq[c] + 1, 2)
    torch.testing.assert_close(p_batch, p_seq)
    assert torch.equal(n_batch, n_seq)


def test_running_mean_default_cap():
    x = torch.tensor([0.3, -1.7, 2.9])
    protos, counts = torch.zeros(1, 3), torch.zeros(1, dtype=torch.long)
    update_prototypes_(protos, counts, x.expand(50, 1, 3), torch.ones(50, 1, dtype=torch.bool))
    torch.testing.assert_close(protos[0], x)  # identical vectors: prototype = x
    assert counts.tolist() == [50]

    # At the default cap of 3000 the count saturates and x gets weight 1/3001.
    p = torch.tensor([[1., 1., 1.]])
    protos, counts = p.clone(), torch.tensor([2999])
    update_prototypes_(protos, counts, x.expand(2, 1, 3), torch.ones(2, 1, dtype=torch.bool))
    after_first = (p * 2999 + x) / 3000
    expected = (after_first * 3000 + x) / 3001
    torch.testing.assert_close(protos, expected)
    assert counts.tolist() == [3000]


# ------------------------------------------------------------------ rectification


def test_rectification_weights_two_classes_by_hand():
    protos = torch.tensor([[0., 0.], [3., 4.]])  # distance d = 5
    features = protos.t().reshape(1, 2, 1, 2)  # pixel 0 at P0, pixel 1 at P1
    weights = rectification_weights(features, protos)
    near = 1 / (1 + math.exp(-5))
    expected = torch.tensor([[near, 1 - near], [1 - near, near]]).view(1, 2, 1, 2)
    torch.testing.assert_close(weights, expected)
    hot = rectification_weights(features, protos, temperature=2.0)
    torch.testing.assert_close(hot[0, 0, 0, 0], torch.tensor(1 / (1 + math.exp(-2.5))))



def test_rectification_weights_keep_small_distances_far_from_origin():
    # With large features the expanded form |f|^2 - 2 f.P + |P|^2 rounds distances
    # of ~0.1 to 0 in fp32; the weights must still follow the true distances.
    offset = torch.tensor([123.456, 987.654])
    protos = torch.tensor([[0., 0.], [0.6, 0.8]]) + offset
    pixels = torch.tensor([[0.1, 0.05], [0.5, 0.7]]) + offset  # near P0, near P1
    dist = torch.cdist(pixels.double(), protos.double())  # float64 reference
    expected = torch.softmax(-dist / 0.1, dim=1).t().float().reshape(1, 2, 1, 2)
    weights = rectification_weights(pixels.t().reshape(1, 2, 1, 2), protos, temperature=0.1)
    torch.testing.assert_close(weights, expected)


def test_rectification_weights_match_direct_distance():
    gen = torch.Generator().manual_seed(2)
    features = torch.relu(torch.randn(2, 16, 5, 6, generator=gen)) * 4
    protos = torch.relu(torch.randn(7, 16, generator=gen)) * 4
    protos[3] = features[1, :, 2, 2]  # one pixel exactly at a prototype
    dist = (features.double().unsqueeze(1) - protos.double()[None, :, :, None, None]).norm(dim=2)
    expected = torch.softmax(-dist / 0.5, dim=1).float()
    weights = rectification_weights(features, protos, temperature=0.5)
    assert weights.dtype == torch.float32 and weights.shape == (2, 7, 5, 6)
    torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-5)


def test_rectify_probabilities_not_renormalised_by_default():
    probs = torch.tensor([0.6, 0.4]).view(1, 2, 1, 1)
    weights = torch.tensor([0.9, 0.1]).view(1, 2, 1, 1)
    raw = rectify_probabilities(probs, weights)
    torch.testing.assert_close(raw.flatten(), torch.tensor([0.54, 0.04]))
    norm = rectify_probabilities(probs, weights, renormalize=True)
    torch.testing.assert_close(norm.flatten(), torch.tensor([0.54 / 0.58, 0.04 / 0.58]))
    zero = rectify_probabilities(probs, torch.zeros_like(weights), renormalize=True)
    assert torch.isfinite(zero).all()


def test_rectify_logits_multiplies_before_softmax():
    logits = torch.tensor([2.0, -1.0, 0.5]).view(1, 3, 1, 1)
    weights = torch.tensor([0.5, 0.25, 0.25]).view(1, 3, 1, 1)
    torch.testing.assert_close(rectify_logits(logits, weights).flatten(),
                               torch.tensor([1.0, -0.25, 0.125]))


def test_ensemble_of_disagreeing_teachers():
    teacher_a = torch.tensor([0.9, 0.1]).view(1, 2, 1, 1)
    teacher_b = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    labels, mean = ensemble_pseudo_label([teacher_a, teacher_b])
    assert labels.dtype == torch.long and labels.tolist() == [[[0]]]
    torch.testing.assert_close(mean.flatten(), torch.tensor([0.6, 0.4]))

    # Both teachers' features sit at the class-1 prototype: rectification flips it.
    protos = torch.tensor([[0., 0.], [3., 4.]])
    features = protos[1].view(1, 2, 1, 1)
    weights = rectification_weights(features, protos)
    rectified = [rectify_probabilities(p, weights) for p in (teacher_a, teacher_b)]
    labels, mean = ensemble_pseudo_label(rectified)
    assert labels.tolist() == [[[1]]]
    near = 1 / (1 + math.exp(-5))
    expected = 0.5 * torch.tensor([0.9 * (1 - near) + 0.3 * (1 - near), 0.1 * near + 0.7 * near])
    torch.testing.assert_close(mean.flatten(), expected)
    assert mean.sum() < 0.5  # not renormalised


def test_ensemble_needs_a_teacher():
    with pytest.raises(ValueError):
        ensemble_pseudo_label([])


def test_soft_distillation_loss_matches_direct_kl():
    gen = torch.Generator().manual_seed(3)
    shape = (2, 4, 3, 5)
    student = torch.randn(shape, generator=gen, requires_grad=True)
    teachers = [torch.randn(shape, generator=gen) for _ in range(2)]
    weights = [torch.softmax(torch.randn(shape, generator=gen), dim=1) for _ in range(2)]
    temp = 2.0
    loss = soft_distillation_loss(student, teachers, weights, temperature=temp)
    target = torch.softmax((weights[0] * teachers[0] + weights[1] * teachers[1]) / 2 / temp, 1)
    log_s = torch.log_softmax(student / temp, dim=1)
    kl = (target * (target.log() - log_s)).sum() / (2 * 3 * 5)
    torch.testing.assert_close(loss, kl * 0.1 * temp**2)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0

    # The student matching the combined teacher logits gives zero loss.
    combined = (weights[0] * teachers[0] + weights[1] * teachers[1]) / 2
    zero = soft_distillation_loss(combined, teachers, weights, temperature=temp)
    assert abs(zero.item()) < 1e-6


# ---------------------------------------------------------------- loaded prototypes


def test_check_prototypes_accepts_matching_shape():
    check_prototypes(torch.zeros(19, 8), num_classes=19, feature_dim=8, path='p.pth')


def test_check_prototypes_names_path_shapes_and_fix():
    path = 'prototypes/gta2city_round1/gta2city_st-cu_dlv2.pth'
    with pytest.raises(ValueError) as err:
        check_prototypes(torch.zeros(16, 8), num_classes=19, feature_dim=8, path=path)
    message = str(err.value)
    assert path in message and '[19, 8]' in message and '[16, 8]' in message
    assert 'tools/cal_prototypes/cal_prototype.py CONFIG CHECKPOINT' in message


def test_check_prototypes_refuses_non_finite_and_non_tensor():
    bad = torch.zeros(3, 2)
    bad[1, 0] = float('nan')
    with pytest.raises(ValueError, match='x.pth.*NaN'):
        check_prototypes(bad, num_classes=3, feature_dim=2, path='x.pth')
    with pytest.raises(ValueError, match='y.pth'):
        check_prototypes({'state_dict': None}, num_classes=3, feature_dim=2, path='y.pth')


# ------------------------------------------------------------------ properties


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       num_classes=st.integers(1, 6),
       dim=st.integers(1, 9),
       temperature=st.floats(0.05, 20.0))
def test_rectification_weight_properties(seed, num_classes, dim, temperature):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(2, dim, 3, 4, generator=gen) * 3
    protos = torch.randn(num_classes, dim, generator=gen) * 3
    weights = rectification_weights(features, protos, temperature)

    # a distribution over classes
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 3, 4))

    # permuting the prototypes permutes the weights
    perm = torch.randperm(num_classes, generator=gen)
    torch.testing.assert_close(rectification_weights(features, protos[perm], temperature),
                               weights[:, perm])

    # translating features and prototypes together changes nothing
    shift = torch.randn(dim, generator=gen) * 5
    shifted = rectification_weights(features + shift.view(1, dim, 1, 1), protos + shift,
                                    temperature)
    torch.testing.assert_close(shifted, weights, atol=1e-5, rtol=1e-4)


# ------------------------------------------- rectification at the crop's size

def _upsampled_reference(features, protos, size, align_corners):
    """The original's way: materialise the upsampled features (float64),
    then exact pairwise distances."""
    up = F.interpolate(features.double(), size=size, mode='bilinear',
                       align_corners=align_corners)
    b, d = up.shape[:2]
    pixels = up.flatten(2).transpose(1, 2)
    dist = torch.cdist(pixels, protos.double().expand(b, -1, -1),
                       compute_mode='donot_use_mm_for_euclid_dist')
    return dist.transpose(1, 2).reshape(b, -1, *size)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), h=st.integers(1, 9),
       w=st.integers(1, 9), out_h=st.integers(1, 40), out_w=st.integers(1, 40),
       align_corners=st.booleans(), offset=st.sampled_from([0., 500.]))
def test_upsampled_distances_equal_distances_of_upsampled_features(
        seed, h, w, out_h, out_w, align_corners, offset):
    """Any sizes (up- and downsampling, ratios that are not integers), both
    corner conventions, features far from the origin."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.relu(torch.randn(2, 6, h, w, generator=gen,
                                      dtype=torch.float64)) * 3 + offset
    protos = torch.relu(torch.randn(5, 6, generator=gen,
                                    dtype=torch.float64)) * 3 + offset
    protos[0] = features[1, :, h // 2, w // 2]  # a pixel on a prototype
    size = (out_h, out_w)
    expected = _upsampled_reference(features, protos, size, align_corners)
    got = upsampled_squared_distances(features, protos, size, align_corners)
    assert got.dtype == torch.float64 and got.shape == expected.shape
    # the expanded form's float64 rounding is ~1e-16 of the squared norms
    # (features far from the origin: 1e-16 * 1.5e6, still far below the
    # fp32 rounding of such features)
    scale = float(features.pow(2).sum(1).max() + protos.pow(2).sum(1).max())
    torch.testing.assert_close(got, expected ** 2, atol=1e-13 * scale,
                               rtol=1e-12)


def test_rectification_weights_at_crop_size_match_the_materialised_path():
    gen = torch.Generator().manual_seed(3)
    features = torch.relu(torch.randn(2, 32, 8, 8, generator=gen)) * 4
    protos = torch.relu(torch.randn(19, 32, generator=gen)) * 4
    for temperature in (1.0, 0.3):
        dist = _upsampled_reference(features, protos, (64, 64), False)
        expected = torch.softmax(-dist / temperature, dim=1).float()
        got = rectification_weights(features, protos, temperature,
                                    size=(64, 64))
        assert got.dtype == torch.float32 and got.shape == (2, 19, 64, 64)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    # the same size as the features: the direct path
    torch.testing.assert_close(
        rectification_weights(features, protos, size=(8, 8)),
        rectification_weights(features, protos))


def test_the_default_cap_binds_at_3000_vectors():
    """METHOD.md 2.4: the running-mean count saturates at 3000, after which a
    vector enters with weight 1/3001. 3000 vectors of 1, then one of 3002:
    (1 * 3000 + 3002) / 3001 = 2 exactly, and the count stays at 3000."""
    est = PrototypeEstimator(num_classes=1, feature_dim=1)
    features = torch.ones(3000, 1, 4, 4)  # 16 pixels >= min_pixels 10
    logits = torch.zeros(3000, 1, 4, 4)
    est.update(features, logits)
    assert est.counts.tolist() == [3000]
    est.update(torch.full((1, 1, 4, 4), 3002.0), logits[:1])
    assert est.counts.tolist() == [3000]
    assert est.prototypes.item() == pytest.approx(2.0, rel=1e-6)
