"""ACDC and Dark Zurich val as evaluation targets: the datasets read
the official layouts, errors name the missing folder or file, the configs
follow the Cityscapes protocol, and ``tools/test.py`` scores them (overall
and per ACDC condition) as an independent confusion matrix does."""
import functools
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch
import warm_tools
from conftest import (
    ACDC_CONDITIONS,
    ADVERSE_H,
    ADVERSE_W,
    REPO,
    add_to_confusion,
    cfg_option_args,
    normalised_input,
    protocol_prediction,
    write_acdc,
    write_dark_zurich,
)
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, METRICS, MODELS

import mmseg_ddb  # noqa: F401
from mmseg_ddb.datasets import ACDCDataset, DDBDarkZurichDataset
from mmseg_ddb.datasets.base import CITYSCAPES_METAINFO
from mmseg_ddb.errors import ConfigError, DataError
from mmseg_ddb.utils import load_config

init_default_scope('mmseg')
LOAD = [dict(type='DDBLoadImageFromFile'), dict(type='DDBLoadAnnotations')]
ACDC_CONFIG = osp.join(REPO, 'configs', 'tests', 'acdc_val_dlv2_r101v1c.py')
DZ_CONFIG = osp.join(REPO, 'configs', 'tests',
                     'dark_zurich_val_dlv2_r101v1c.py')
CS_CONFIG = osp.join(REPO, 'configs', 'tests', 'gta2cs_r2-ckd-pro-bs1x4.py')
TEST = osp.join(REPO, 'tools', 'test.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
COUNTS = dict(fog=2, night=3, rain=1, snow=2)
NAMES = CITYSCAPES_METAINFO['classes']


def samples(ds):
    return [(ds.get_data_info(i)['img_path'],
             ds.get_data_info(i).get('seg_map_path'))
            for i in range(len(ds))]


# ---------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------

def test_acdc_reads_every_condition_and_pairs(tmp_path):
    root = str(tmp_path)
    written = write_acdc(root, COUNTS)
    ds = ACDCDataset(data_root=root, pipeline=LOAD)
    # condition by condition, in file order; no *_ref image, no other label
    assert samples(ds) == [p for c in ACDC_CONDITIONS for p in written[c]]
    assert len(ds) == sum(COUNTS.values())
    assert ds.metainfo['classes'] == CITYSCAPES_METAINFO['classes']
    assert ds.metainfo['palette'] == CITYSCAPES_METAINFO['palette']
    out = ds[3]  # night, sequence 1
    img_path, lbl_path = written['night'][1]
    assert out['img_path'] == img_path and out['seg_map_path'] == lbl_path
    np.testing.assert_array_equal(out['img'], cv2.imread(img_path))
    np.testing.assert_array_equal(
        out['gt_seg_map'], cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED))
    assert out['gt_seg_map'].shape == (ADVERSE_H, ADVERSE_W)


def test_acdc_condition_selection(tmp_path):
    root = str(tmp_path)
    written = write_acdc(root, COUNTS)
    night = ACDCDataset(data_root=root, pipeline=[], conditions=('night', ))
    assert samples(night) == written['night']
    assert samples(ACDCDataset(data_root=root, pipeline=[],
                               conditions='rain')) == written['rain']
    # the order given is the order read; repeats are read once
    two = ACDCDataset(data_root=root, pipeline=[],
                      conditions=['snow', 'fog', 'snow'])
    assert samples(two) == written['snow'] + written['fog']
    for bad, word in ((('fog', 'foggy'), "'foggy'"), ((), 'empty')):
        with pytest.raises(ConfigError) as err:
            ACDCDataset(data_root=root, pipeline=[], conditions=bad)
        assert word in str(err.value) and 'fog, night, rain, snow' \
            in str(err.value)


def test_acdc_missing_condition_folder_is_named(tmp_path):
    root = str(tmp_path)
    write_acdc(root, 1, conditions=('fog', 'night', 'rain'))  # no snow
    with pytest.raises(DataError) as err:
        ACDCDataset(data_root=root, pipeline=[])
    msg = str(err.value)
    assert osp.join(root, 'rgb_anon', 'snow', 'val') in msg
    assert "'snow'" in msg and 'rgb_anon_trainvaltest.zip' in msg
    # the others read fine
    assert len(ACDCDataset(data_root=root, pipeline=[],
                           conditions=('fog', 'night', 'rain'))) == 3
    # a condition's label folder missing: named too
    shutil.rmtree(osp.join(root, 'gt', 'rain'))
    with pytest.raises(DataError) as err:
        ACDCDataset(data_root=root, pipeline=[],
                    conditions=('fog', 'rain'))
    assert osp.join(root, 'gt', 'rain', 'val') in str(err.value)
    assert 'gt_trainval.zip' in str(err.value)
    # another split than the one on disk
    with pytest.raises(DataError) as err:
        ACDCDataset(data_root=root, pipeline=[], split='train',
                    conditions='fog')
    assert osp.join(root, 'rgb_anon', 'fog', 'train') in str(err.value)


def test_acdc_missing_label_and_stray_label_are_named(tmp_path):
    root = str(tmp_path)
    written = write_acdc(root, COUNTS)
    img_path, lbl_path = written['snow'][1]
    os.remove(lbl_path)
    with pytest.raises(DataError) as err:
        ACDCDataset(data_root=root, pipeline=[])
    assert img_path in str(err.value) and lbl_path in str(err.value)
    # the other conditions are not affected
    assert len(ACDCDataset(data_root=root, pipeline=[],
                           conditions=('fog', 'night', 'rain'))) == 6
    img_path, lbl_path = written['fog'][0]
    os.remove(img_path)
    with pytest.raises(DataError) as err:
        ACDCDataset(data_root=root, pipeline=[], conditions='fog')
    assert lbl_path in str(err.value) and img_path in str(err.value)


def test_acdc_without_labels(tmp_path):
    """The test split has no public labels: images only, per condition."""
    root = str(tmp_path)
    written = write_acdc(root, 2, split='test')
    for condition in ACDC_CONDITIONS:  # the test labels are not published
        shutil.rmtree(osp.join(root, 'gt', condition, 'test'))
    ds = ACDCDataset(data_root=root, split='test',
                     data_prefix=dict(img_path='rgb_anon'),
                     pipeline=[dict(type='DDBLoadImageFromFile')])
    assert samples(ds) == [(img, None) for c in ACDC_CONDITIONS
                           for img, _ in written[c]]
    assert ds[0]['img'].shape == (ADVERSE_H, ADVERSE_W, 3)


def test_dark_zurich_reads_the_night_val_set(tmp_path):
    root = str(tmp_path)
    written = write_dark_zurich(root, 3)
    ds = DDBDarkZurichDataset(data_root=root, pipeline=LOAD)
    assert samples(ds) == written  # no rgb_anon/val/day reference image
    assert ds.metainfo['classes'] == CITYSCAPES_METAINFO['classes']
    for i, (img_path, lbl_path) in enumerate(written):
        np.testing.assert_array_equal(
            ds[i]['gt_seg_map'], cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED))


def test_dark_zurich_errors_name_the_path(tmp_path):
    root = str(tmp_path / 'dark_zurich')
    with pytest.raises(DataError) as err:
        DDBDarkZurichDataset(data_root=root, pipeline=[])
    assert osp.join(root, 'rgb_anon', 'val', 'night') in str(err.value)
    assert 'Dark_Zurich_val_anon' in str(err.value)
    written = write_dark_zurich(root, 3)
    os.remove(written[2][1])
    with pytest.raises(DataError) as err:
        DDBDarkZurichDataset(data_root=root, pipeline=[])
    assert written[2][0] in str(err.value)
    assert written[2][1] in str(err.value)


# ---------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('config,writer,n', [
    (ACDC_CONFIG, lambda r: write_acdc(r, COUNTS), 8),
    (DZ_CONFIG, lambda r: write_dark_zurich(r, 3), 3)],
    ids=['acdc', 'dark_zurich'])
def test_config_builds_and_follows_the_cityscapes_protocol(
        tmp_path, config, writer, n):
    root = str(tmp_path)
    writer(root)
    cfg = load_config(config)
    assert cfg.model.type == 'DDBEncoderDecoder'
    assert cfg.model.pretrained is None
    assert cfg.test_dataloader.batch_size == 1
    assert cfg.test_cfg.type == 'TestLoop'
    # the same test pipeline as Cityscapes val
    cs = load_config(CS_CONFIG)
    assert cfg.test_dataloader.dataset.pipeline == \
        cs.test_dataloader.dataset.pipeline
    cfg.test_dataloader.dataset.data_root = root
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(ds) == n
    out = ds[0]
    # 1920x1080-shaped image resized to fit 1024x512 keeping its ratio:
    # 910x512; the label stays at full size
    assert tuple(out['inputs'].shape) == (3, 512, 910)
    assert out['data_samples'].ori_shape == (ADVERSE_H, ADVERSE_W)
    assert tuple(out['data_samples'].gt_sem_seg.data.shape) == \
        (1, ADVERSE_H, ADVERSE_W)
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
        else [cfg.test_evaluator]
    for metric in evaluators:
        assert METRICS.build(metric) is not None


def test_acdc_config_reports_overall_and_per_condition():
    cfg = load_config(ACDC_CONFIG)
    overall, per_condition = cfg.test_evaluator
    assert overall == dict(type='DDBIoUMetric')
    assert per_condition.prefix == 'condition'
    assert set(per_condition.datasets) == set(ACDC_CONDITIONS)
    assert tuple(cfg.test_dataloader.dataset.conditions) == ACDC_CONDITIONS
    assert cfg.test_dataloader.dataset.split == 'val'


# ---------------------------------------------------------------------------
# tools/test.py on a tiny checkpoint, checked by an independent computation
# ---------------------------------------------------------------------------

# The R101 test config's model shrunk to ResNet-18 (keys the config has), and
# the 1024x512 test resize shrunk to 256x128 to keep the CPU run short.
MODEL_OPTIONS = {
    'model.backbone.depth': 18,
    'model.decode_head.in_channels': 512,
    'model.decode_head.aspp_channels': 32,
    'model.decode_head.channels': 64,
}
TEST_SCALE = (256, 128)


def tiny_model():
    cfg = load_config(ACDC_CONFIG)
    cfg.merge_from_dict(MODEL_OPTIONS)
    for part in (cfg.model.backbone, cfg.model.decode_head):
        part.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def network_input(path):
    """The image as the test pipeline makes it: fit into TEST_SCALE keeping
    the ratio (bilinear, on the uint8 BGR image), RGB, normalised."""
    bgr = cv2.imread(path)
    h, w = bgr.shape[:2]
    s = min(max(TEST_SCALE) / max(h, w), min(TEST_SCALE) / min(h, w))
    bgr = cv2.resize(bgr, (int(w * s + 0.5), int(h * s + 0.5)),
                     interpolation=cv2.INTER_LINEAR)
    return normalised_input(bgr)


def fit_tiny_checkpoint(pairs, path):
    """A ResNet-18 model that segments the tiny scenes somewhat: random
    weights, BN statistics of these images, and a least-squares classifier
    on the decode head's features. Saved as ``{'state_dict': ...}``."""
    model = tiny_model()
    xs = [network_input(img) for img, _ in pairs]
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x in xs:
            model.logits_and_features(x)
    model.eval()
    feats, targets = [], []
    with torch.no_grad():
        for x, (_, lbl_path) in zip(xs, pairs):
            _, f = model.logits_and_features(x)
            label = cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED)
            label = cv2.resize(label, f.shape[:1:-1],
                               interpolation=cv2.INTER_NEAREST).reshape(-1)
            f = f[0].flatten(1).T.numpy()
            keep = label != 255
            feats.append(f[keep])
            targets.append(np.eye(19)[label[keep]])
    a = np.concatenate(feats)
    a = np.concatenate([a, np.ones((len(a), 1))], 1)
    w = np.linalg.lstsq(a, np.concatenate(targets), rcond=None)[0]
    seg = model.decode_head.conv_seg
    seg.weight.data = torch.from_numpy(w[:-1].T.astype(np.float32)).reshape(
        seg.weight.shape)
    seg.bias.data = torch.from_numpy(w[-1].astype(np.float32))
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


@functools.lru_cache(maxsize=1)
def load_tiny(checkpoint):
    model = tiny_model()
    model.load_state_dict(torch.load(checkpoint, weights_only=True)
                          ['state_dict'])
    return model.eval()


def confusion_by_hand(checkpoint, pairs):
    """Whole image, softmax resized to the label size, argmax; one 19x19
    confusion matrix (rows: label) per image."""
    model = load_tiny(checkpoint)
    confs = []
    for img_path, lbl_path in pairs:
        label = cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED)
        pred = protocol_prediction(model, network_input(img_path),
                                   label.shape)
        conf = add_to_confusion(np.zeros((19, 19), np.int64), label, pred)
        confs.append(conf)
    return confs


def iou(conf):
    """Per-class IoU in percent (NaN: class absent) and their mean."""
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        per_class = np.where(union > 0, 100 * tp / union, np.nan)
    return np.nanmean(per_class), per_class


def loader_opts(root):
    return {'test_dataloader.dataset.data_root': root,
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False,
            'test_dataloader.dataset.pipeline.1.scale': TEST_SCALE,
            **MODEL_OPTIONS}


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory):
    """The tiny ACDC and Dark Zurich sets, a checkpoint fitted on them, and
    three ``tools/test.py`` runs at once (2 cores): ACDC val, ACDC night only,
    Dark Zurich val. Returns the data, checkpoint and ``{run: (result,
    metrics)}``."""
    tmp = tmp_path_factory.mktemp('adverse_cli')
    acdc = write_acdc(str(tmp / 'acdc'), COUNTS)
    dz = write_dark_zurich(str(tmp / 'dz'), 3)
    every = [p for c in ACDC_CONDITIONS for p in acdc[c]] + dz
    ckpt = fit_tiny_checkpoint(every, str(tmp / 'tiny.pth'))
    runs = {
        'acdc': (ACDC_CONFIG, loader_opts(str(tmp / 'acdc'))),
        'night': (ACDC_CONFIG, {**loader_opts(str(tmp / 'acdc')),
                                'test_dataloader.dataset.conditions':
                                '[night]'}),
        'dz': (DZ_CONFIG, loader_opts(str(tmp / 'dz'))),
    }
    procs = {}
    for name, (config, opts) in runs.items():
        out = str(tmp / f'{name}.json')
        cmd = [sys.executable, TEST, config, ckpt, '--eval', 'mIoU',
               '--metrics-out', out, '--work-dir', str(tmp / f'w_{name}'),
               '--cfg-options', *cfg_option_args(opts)]
        procs[name] = (warm_tools.shared(ENV).start(cmd, str(tmp)), out)
    results = {}
    for name, (proc, out) in procs.items():
        stdout, stderr = proc.communicate(300)
        assert proc.returncode == 0, f'{name}: {stdout[-3000:]}{stderr[-3000:]}'
        with open(out) as f:
            results[name] = (stdout, json.load(f))
    return dict(acdc=acdc, dz=dz, ckpt=ckpt, results=results)


def assert_matches(metrics_miou, per_class, conf):
    miou, ious = iou(conf)
    assert metrics_miou == pytest.approx(miou, abs=0.01)
    assert list(per_class) == list(NAMES)
    for name, value in zip(NAMES, ious):
        if np.isnan(value):
            assert per_class[name] is None, name
        else:
            assert per_class[name] == pytest.approx(value, abs=0.01), name


def test_acdc_cli_overall_and_per_condition_match_by_hand(cli_runs):
    stdout, metrics = cli_runs['results']['acdc']
    confs = {c: confusion_by_hand(cli_runs['ckpt'], cli_runs['acdc'][c])
             for c in ACDC_CONDITIONS}
    total = sum(sum(v) for v in confs.values())
    predicted = (total.sum(0) > 0).sum()
    assert predicted > 2, 'degenerate model: the check would be weak'
    # overall: one confusion matrix over all of val
    assert_matches(metrics['mIoU'], metrics['per_class']['all'], total)
    assert f'mIoU: {metrics["mIoU"]:.2f}' in stdout
    per_condition = {}
    for c in ACDC_CONDITIONS:
        assert_matches(metrics[f'condition/{c}/mIoU'],
                       metrics['per_class'][f'condition/{c}'], sum(confs[c]))
        assert f'condition/{c}/mIoU: {metrics[f"condition/{c}/mIoU"]:.2f}' \
            in stdout
        per_condition[c] = iou(sum(confs[c]))[0]
    # the conditions differ, so a wrong assignment would show
    assert len({round(v, 2) for v in per_condition.values()}) > 1
    assert metrics['condition/mIoU'] == pytest.approx(
        np.mean(list(per_condition.values())), abs=0.01)
    for key, value in metrics.items():
        if key != 'per_class' and key.endswith(('mIoU', 'mAcc', 'aAcc')):
            assert 0 <= value <= 100, key


def test_acdc_cli_one_condition(cli_runs):
    _, metrics = cli_runs['results']['night']
    conf = sum(confusion_by_hand(cli_runs['ckpt'], cli_runs['acdc']['night']))
    assert_matches(metrics['mIoU'], metrics['per_class']['all'], conf)
    assert metrics['condition/night/mIoU'] == metrics['mIoU']
    for c in ('fog', 'rain', 'snow'):  # not evaluated: no number (null)
        assert metrics[f'condition/{c}/mIoU'] is None


def test_dark_zurich_cli_matches_by_hand(cli_runs):
    stdout, metrics = cli_runs['results']['dz']
    conf = sum(confusion_by_hand(cli_runs['ckpt'], cli_runs['dz']))
    assert_matches(metrics['mIoU'], metrics['per_class'], conf)
    assert f'mIoU: {metrics["mIoU"]:.2f}' in stdout
    assert 0 < metrics['mIoU'] <= 100
