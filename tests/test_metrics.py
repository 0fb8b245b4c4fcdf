"""Confusion-matrix mIoU against an independent computation (METHOD.md 3)."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_ddb.datasets import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
from mmseg_ddb.datasets.base import CITYSCAPES_METAINFO
from mmseg_ddb.evaluation import DDBIoUMetric, confusion_matrix, iou_from_confusion

K = 19


def random_batch(seed, n=3, shape=(24, 40), absent_gt=(3, 9, 14),
                 absent_both=(16, 17), ignore_frac=0.2):
    """Predictions and labels of ``n`` images.

    Classes ``absent_gt`` never occur in the labels but are predicted;
    ``absent_both`` occur in neither; a fraction of pixels is 255.
    """
    rng = np.random.default_rng(seed)
    gt_classes = [c for c in range(K) if c not in absent_gt + absent_both]
    pred_classes = [c for c in range(K) if c not in absent_both]
    labels = rng.choice(gt_classes, size=(n, *shape)).astype(np.int64)
    preds = rng.choice(pred_classes, size=(n, *shape)).astype(np.int64)
    # make predictions agree with the label often, so IoUs are not tiny
    agree = rng.random((n, *shape)) < 0.5
    preds[agree] = labels[agree]
    labels[rng.random((n, *shape)) < ignore_frac] = 255
    for c in absent_gt:  # predicted somewhere outside the ignore pixels too
        if not (preds[labels != 255] == c).any():  # a small draw can miss it
            preds[tuple(np.argwhere(labels != 255)[0])] = c
        assert (preds[labels != 255] == c).any()
    return preds, labels


def numpy_confusion(preds, labels, ignore=255):
    conf = np.zeros((K, K), np.int64)
    keep = labels != ignore
    np.add.at(conf, (labels[keep], preds[keep]), 1)
    return conf


def iou_by_loops(preds, labels, ignore=255):
    """Per-class IoU straight from the pixels (no confusion matrix)."""
    valid = labels != ignore
    ious = []
    for c in range(K):
        inter = np.sum((preds == c) & (labels == c) & valid)
        union = np.sum(((preds == c) | (labels == c)) & valid)
        ious.append(inter / union if union else np.nan)
    return np.array(ious)


def test_confusion_matrix_matches_numpy():
    preds, labels = random_batch(0)
    conf = confusion_matrix(torch.from_numpy(preds), torch.from_numpy(labels),
                            K, ignore_index=255)
    assert conf.shape == (K, K)
    np.testing.assert_array_equal(conf.numpy(), numpy_confusion(preds, labels))
    # rows are the ground truth: 255 pixels are not counted at all
    assert conf.sum().item() == np.sum(labels != 255)
    # single images add up to the batch
    total = sum(confusion_matrix(torch.from_numpy(p), torch.from_numpy(y), K)
                for p, y in zip(preds, labels))
    assert torch.equal(total, conf)


def test_confusion_matrix_on_hand_made_example():
    label = torch.tensor([[0, 0, 1], [2, 255, 1]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 1]])
    conf = confusion_matrix(pred, label, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]


def test_iou_from_confusion_matches_pixel_loops_and_nan_rules():
    preds, labels = random_batch(1)
    out = iou_from_confusion(numpy_confusion(preds, labels))
    expected = iou_by_loops(preds, labels)
    np.testing.assert_allclose(out['IoU'], expected, equal_nan=True)
    for c in (3, 9, 14):  # absent from the GT, predicted: IoU 0, counted
        assert out['IoU'][c] == 0
        assert np.isnan(out['Acc'][c])
    for c in (16, 17):  # absent from both: NaN, left out of the mean
        assert np.isnan(out['IoU'][c])
    assert out['mIoU'] == pytest.approx(np.nanmean(expected))
    assert out['mIoU'] == pytest.approx(
        np.sum(np.nan_to_num(expected)) / (K - 2))
    valid = labels != 255
    assert out['aAcc'] == pytest.approx(
        np.mean(preds[valid] == labels[valid]))
    accs = [np.mean(preds[valid & (labels == c)] == c)
            for c in range(K) if (valid & (labels == c)).any()]
    assert out['mAcc'] == pytest.approx(np.mean(accs))


def test_iou_is_accumulated_over_the_set_not_averaged_per_image():
    # image 1: class 0 perfect on 1 pixel; image 2: class 0 wrong on 9 pixels
    conf1 = np.zeros((2, 2))
    conf1[0, 0] = 1
    conf2 = np.zeros((2, 2))
    conf2[0, 1] = 9
    out = iou_from_confusion(conf1 + conf2)
    assert out['IoU'][0] == pytest.approx(0.1)  # not (1 + 0) / 2


@pytest.mark.parametrize('classes', [SYNTHIA_16_CLASSES, SYNTHIA_13_CLASSES])
def test_class_subset_mean(classes):
    preds, labels = random_batch(2)
    expected = iou_by_loops(preds, labels)
    out = iou_from_confusion(numpy_confusion(preds, labels), classes)
    assert out['mIoU'] == pytest.approx(np.nanmean(expected[list(classes)]))
    np.testing.assert_allclose(out['IoU'], expected, equal_nan=True)


def test_synthia_class_lists():
    assert len(SYNTHIA_16_CLASSES) == 16 and len(SYNTHIA_13_CLASSES) == 13
    # terrain, truck and train never occur in SYNTHIA
    assert set(range(19)) - set(SYNTHIA_16_CLASSES) == {9, 14, 16}
    # the 13-class protocol also drops wall, fence and pole
    assert set(SYNTHIA_16_CLASSES) - set(SYNTHIA_13_CLASSES) == {3, 4, 5}


def samples_of(preds, labels):
    out = []
    for p, y in zip(preds, labels):
        s = SegDataSample()
        s.pred_sem_seg = PixelData(data=torch.from_numpy(p)[None])
        s.gt_sem_seg = PixelData(data=torch.from_numpy(y)[None])
        out.append(s.to_dict())
    return out


def run_metric(metric, batches):
    metric.dataset_meta = dict(CITYSCAPES_METAINFO)
    n = 0
    for preds, labels in batches:
        metric.process({}, samples_of(preds, labels))
        n += len(preds)
    return metric.evaluate(n)


def test_metric_matches_independent_computation():
    batches = [random_batch(s, n=2) for s in (3, 4, 5)]
    res = run_metric(DDBIoUMetric(), batches)
    preds = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    expected = iou_by_loops(preds, labels)
    assert res['mIoU'] == pytest.approx(100 * np.nanmean(expected), abs=0.005)
    valid = labels != 255
    assert res['aAcc'] == pytest.approx(
        100 * np.mean(preds[valid] == labels[valid]), abs=0.005)
    names = CITYSCAPES_METAINFO['classes']
    for c, name in enumerate(names):
        value = res[f'IoU.{name}']
        if np.isnan(expected[c]):
            assert np.isnan(value), name
        else:
            assert value == pytest.approx(100 * expected[c], abs=0.005), name
    assert res['IoU.wall'] == 0.0  # predicted, not in the GT
    assert np.isnan(res['IoU.motorcycle'])  # in neither


def test_metric_subset_keys_and_reset_between_evaluations():
    metric = DDBIoUMetric(class_subsets={'16': SYNTHIA_16_CLASSES,
                                         '13': SYNTHIA_13_CLASSES})
    first = random_batch(6)
    res = run_metric(metric, [first])
    expected = iou_by_loops(*first)
    for name, classes in (('16', SYNTHIA_16_CLASSES),
                          ('13', SYNTHIA_13_CLASSES)):
        assert res[f'mIoU{name}'] == pytest.approx(
            100 * np.nanmean(expected[list(classes)]), abs=0.005)
    assert res['mIoU'] == pytest.approx(100 * np.nanmean(expected), abs=0.005)
    # a second evaluation starts from an empty matrix
    second = random_batch(7)
    res2 = run_metric(metric, [second])
    assert res2['mIoU'] == pytest.approx(
        100 * np.nanmean(iou_by_loops(*second)), abs=0.005)


def test_metric_per_target_set():
    metric = DDBIoUMetric(datasets=dict(cs='data/cs', map='data/map'))
    metric.dataset_meta = dict(CITYSCAPES_METAINFO)
    sets = dict(cs=random_batch(8, n=2), map=random_batch(9, n=3))
    for name, (preds, labels) in sets.items():
        samples = samples_of(preds, labels)
        for i, s in enumerate(samples):
            s['img_path'] = f'data/{name}/val/{i}.png'
        metric.process({}, samples)
    res = metric.evaluate(5)
    per_set = {n: 100 * np.nanmean(iou_by_loops(*b)) for n, b in sets.items()}
    for name, value in per_set.items():
        assert res[f'{name}/mIoU'] == pytest.approx(value, abs=0.005)
    assert res['mIoU'] == pytest.approx(np.mean(list(per_set.values())),
                                        abs=0.01)


# ---------------------------------------------------------------------------
# properties: the set-level IoU does not depend on how the set is batched
# ---------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _split_points(n, cuts):
    return sorted({min(max(c, 1), n - 1) for c in cuts} - {0, n}) \
        if n > 1 else []


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6),
       cuts=st.lists(st.integers(0, 6), max_size=4),
       ignore_frac=st.floats(0, 0.9))
def test_confusion_accumulation_is_invariant_to_batch_splitting(
        seed, n, cuts, ignore_frac):
    preds, labels = random_batch(seed % 1000, n=n, shape=(6, 7),
                                 absent_gt=(), absent_both=(),
                                 ignore_frac=ignore_frac)
    whole = confusion_matrix(torch.from_numpy(preds),
                             torch.from_numpy(labels), K)
    parts = np.split(np.arange(n), _split_points(n, cuts))
    summed = sum(confusion_matrix(torch.from_numpy(preds[p]),
                                  torch.from_numpy(labels[p]), K)
                 for p in parts)
    assert torch.equal(whole, summed)
    assert np.array_equal(whole.numpy(), numpy_confusion(preds, labels))
    # pixel order inside an image does not matter either
    perm = np.random.default_rng(seed).permutation(preds.size)
    shuffled = confusion_matrix(torch.from_numpy(preds.reshape(-1)[perm]),
                                torch.from_numpy(labels.reshape(-1)[perm]), K)
    assert torch.equal(whole, shuffled)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 5),
       cuts=st.lists(st.integers(0, 5), min_size=1, max_size=3))
def test_metric_gives_the_same_result_for_any_batching_and_rank_split(
        seed, n, cuts):
    """One pass with every image in its own batch equals feeding the set in
    arbitrary batches and gathering per-"rank" partial matrices."""
    preds, labels = random_batch(seed % 1000, n=n, shape=(8, 12),
                                 absent_gt=(3, ))

    def samples(idx):
        return [dict(pred_sem_seg=dict(data=torch.from_numpy(preds[i][None])),
                     gt_sem_seg=dict(data=torch.from_numpy(labels[i][None])))
                for i in idx]

    def run(batches):
        metric = DDBIoUMetric()
        metric.dataset_meta = CITYSCAPES_METAINFO
        for b in batches:
            metric.process(None, samples(b))
        return metric

    single = run([[i] for i in range(n)])
    single.results = [{k: v.numpy() for k, v in single._conf.items()}]
    expected = single.compute_metrics(single.results)
    parts = np.split(np.arange(n), _split_points(n, cuts))
    ranks = [run([p.tolist()]) for p in parts]
    gathered = [{k: v.numpy() for k, v in r._conf.items()} for r in ranks]
    def comparable(metrics):  # NaN != NaN
        return {k: None if v != v else v for k, v in metrics.items()}

    assert comparable(DDBIoUMetric.compute_metrics(single, gathered)) == \
        comparable(expected)
    assert expected['IoU.wall'] == 0 and expected['IoU.train'] != \
        expected['IoU.train']  # absent from the labels / from both: 0 / NaN
    conf = numpy_confusion(preds, labels)
    assert expected['mIoU'] == round(100 * float(
        iou_from_confusion(conf)['mIoU']), 2)
