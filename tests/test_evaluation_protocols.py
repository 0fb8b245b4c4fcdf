"""``tools/test.py`` beyond the default protocol: the original checkpoint
layouts at the command line, ``--out``, ``--plot-dir``, ``--mode slide``,
``--aug-test`` and ``--amp`` -- each checked against a computation by hand.
"""
import glob
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
import warm_tools
from conftest import REPO, SYNTHETIC_CONFIG, cfg_option_args, loader_options, normalised_input
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis.test import aug_test_pipeline, full_resolution_pipeline, prepare_test_config
from mmseg_ddb.errors import ConfigError

TEST = osp.join(REPO, 'tools', 'test.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
CITYSCAPES_TEST = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='DDBLoadAnnotations'),
    dict(type='PackSegInputs'),
]


def random_model(seed: int):
    """The synthetic demo network with random weights whose predictions vary
    over the image (a fresh init predicts one class everywhere)."""
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(SYNTHETIC_CONFIG).model)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if 'running_var' in key:
                t.uniform_(0.5, 2)
            elif 'running_mean' in key:
                t.normal_(0, 0.1)
            elif 'conv_seg' in key and t.is_floating_point():
                t.normal_(0, 1)
    return model.eval()


def prefixed(state_dict, prefix):
    return {prefix + k: v for k, v in state_dict.items()}


def normalised(path):
    return normalised_input(cv2.imread(path))


def read_dir(folder):
    out = {}
    for path in sorted(glob.glob(osp.join(folder, '*.png'))):
        out[osp.basename(path)] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return out


@pytest.fixture(scope='module')
def runs(tiny_data, tmp_path_factory):
    """One checkpoint saved natively and in the original ST and CKD layouts
    (the student next to other weights), and ``tools/test.py`` run on them
    with each protocol option, all at once (2 cores)."""
    tmp = tmp_path_factory.mktemp('protocols')
    student = random_model(1).state_dict()
    other = random_model(2).state_dict()
    third = random_model(3).state_dict()
    meta = dict(CLASSES=('road', 'sidewalk'), PALETTE=[[128, 64, 128]],
                mmseg_version='0.20.2')
    files = {
        'native': dict(state_dict=student, meta=dict(iter=8)),
        'st': dict(state_dict={**prefixed(student, 'model.'),
                               **prefixed(other, 'ema_model.')}, meta=meta),
        'ckd': dict(state_dict={**prefixed(other, 'cu_model.'),
                                **prefixed(student, 'stu_model.'),
                                **prefixed(third, 'ca_model.')}, meta=meta),
    }
    for name, obj in files.items():
        torch.save(obj, str(tmp / f'{name}.pth'))
    opts = cfg_option_args(loader_options(tiny_data))
    native = str(tmp / 'native.pth')
    cases = {
        'native': (native, ['--plot-dir', str(tmp / 'plot')]),
        'st': (str(tmp / 'st.pth'), []),
        'ckd': (str(tmp / 'ckd.pth'), []),
        'amp': (native, ['--amp']),
        'channels_last': (native, ['--channels-last']),
        'batch3': (native, ['--batch-size', '3']),
        # the window covers the whole 128x256 image: the same as whole
        'slide_whole': (native, ['--mode', 'slide', '--slide-crop', '128',
                                 '256', '--slide-stride', '128', '256']),
        'aug_identity': (native, ['--aug-test', '--aug-scales', '1.0',
                                  '--no-aug-flip']),
        'aug_flip': (native, ['--aug-test', '--aug-scales', '1.0']),
        'aug_ms': (native, ['--aug-test', '--aug-scales', '0.5', '1.5']),
    }
    procs = {}
    for name, (ckpt, extra) in cases.items():
        cmd = [sys.executable, TEST, SYNTHETIC_CONFIG, ckpt, '--eval', 'mIoU',
               '--work-dir', str(tmp / 'wd' / name), '--out',
               str(tmp / 'out' / name), '--metrics-out',
               str(tmp / f'{name}.json'), *extra, '--cfg-options', *opts]
        procs[name] = warm_tools.shared(ENV).start(cmd, str(tmp))
    for name, proc in procs.items():
        out, err = proc.communicate(300)
        assert proc.returncode == 0, f'{name}\n{out[-2000:]}\n{err[-3000:]}'
    return dict(tmp=tmp, student=student, other=other,
                out={name: read_dir(str(tmp / 'out' / name))
                     for name in cases})


def test_original_layouts_give_the_native_predictions(runs, tiny_data):
    native = runs['out']['native']
    assert len(native) == 4
    for layout in ('st', 'ckd'):
        assert runs['out'][layout].keys() == native.keys()
        for name, pred in native.items():
            assert np.array_equal(runs['out'][layout][name], pred), name
    # the other weights in those files predict differently: choosing the
    # wrong prefix would have been seen
    model = random_model(2)
    first = sorted(glob.glob(osp.join(tiny_data, 'cs', 'leftImg8bit', 'val',
                                      '*', '*.png')))[0]
    with torch.no_grad():
        pred = model.predict(normalised(first))[0].pred_sem_seg.data[0]
    stem = osp.splitext(osp.basename(first))[0] + '.png'
    assert not np.array_equal(pred.numpy(), native[stem])


def test_out_writes_the_predictions_of_the_model(runs, tiny_data):
    model = random_model(1)
    for path in sorted(glob.glob(osp.join(tiny_data, 'cs', 'leftImg8bit',
                                          'val', '*', '*.png'))):
        with torch.no_grad():
            pred = model.predict(normalised(path))[0].pred_sem_seg.data[0]
        stem = osp.splitext(osp.basename(path))[0] + '.png'
        got = runs['out']['native'][stem]
        assert got.dtype == np.uint8 and got.shape == (128, 256)
        assert np.array_equal(got, pred.numpy().astype(np.uint8))
        assert len(np.unique(got)) > 1


def test_plot_dir_confusion_matrix_is_the_one_of_the_predictions(
        runs, tiny_data):
    plot = runs['tmp'] / 'plot'
    conf = np.load(str(plot / 'confusion_matrix.npy'))
    expected = np.zeros((19, 19), np.int64)
    for name, pred in runs['out']['native'].items():
        label_path = glob.glob(osp.join(
            tiny_data, 'cs', 'gtFine', 'val', '*',
            name.replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')))[0]
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        keep = label != 255
        np.add.at(expected, (label[keep], pred[keep]), 1)
    assert np.array_equal(conf, expected)
    image = cv2.imread(str(plot / 'confusion_matrix.png'))
    assert image is not None and min(image.shape[:2]) >= 400


def test_batched_evaluation_predicts_the_same(runs):
    assert runs['out']['batch3'].keys() == runs['out']['native'].keys()
    for name, pred in runs['out']['native'].items():
        assert np.array_equal(runs['out']['batch3'][name], pred), name


def test_slide_with_one_window_equals_whole(runs):
    for name, pred in runs['out']['native'].items():
        assert np.array_equal(runs['out']['slide_whole'][name], pred), name


def test_aug_test_single_view_equals_plain(runs):
    for name, pred in runs['out']['native'].items():
        assert np.array_equal(runs['out']['aug_identity'][name], pred), name


def test_aug_test_flip_averages_the_flipped_probabilities(runs, tiny_data):
    model = random_model(1)
    changed = 0
    for path in sorted(glob.glob(osp.join(tiny_data, 'cs', 'leftImg8bit',
                                          'val', '*', '*.png'))):
        x = normalised(path)
        with torch.no_grad():
            plain = model.predict(x)[0].seg_logits.data
            flipped = model.predict(x.flip(3))[0].seg_logits.data.flip(2)
        expected = ((plain + flipped) / 2).argmax(0).numpy()
        stem = osp.splitext(osp.basename(path))[0] + '.png'
        got = runs['out']['aug_flip'][stem]
        assert (got == expected).mean() > 0.9999
        changed += int((got != runs['out']['native'][stem]).sum())
    assert changed > 0  # the flipped view did contribute


def test_aug_test_multi_scale_runs_and_differs(runs):
    ms, native = runs['out']['aug_ms'], runs['out']['native']
    assert ms.keys() == native.keys()
    agree = np.mean([(ms[k] == native[k]).mean() for k in native])
    assert 0.3 < agree < 1.0


def test_amp_predictions_agree_with_fp32(runs):
    amp, native = runs['out']['amp'], runs['out']['native']
    agree = np.mean([(amp[k] == native[k]).mean() for k in native])
    assert agree > 0.95


def test_channels_last_predictions_agree_with_the_default_format(runs):
    # the same network: only the rounding of other kernels differs
    ours, native = runs['out']['channels_last'], runs['out']['native']
    agree = np.mean([(ours[k] == native[k]).mean() for k in native])
    assert agree > 0.99


def test_non_overlapping_slide_windows_are_predicted_separately(tiny_data):
    """Slide with 64x64 windows and stride 64: each window's prediction is
    the model's prediction on that window alone."""
    cfg = prepare_test_config(SYNTHETIC_CONFIG, None, mode='slide',
                              slide_crop=(64, 64), slide_stride=(64, 64))
    model = random_model(1)
    model.test_cfg = cfg.model.test_cfg
    path = sorted(glob.glob(osp.join(tiny_data, 'cs', 'leftImg8bit', 'val',
                                     '*', '*.png')))[0]
    x = normalised(path)
    with torch.no_grad():
        got = model.predict(x)[0].pred_sem_seg.data[0]
        expected = torch.zeros_like(got)
        for i in range(0, 128, 64):
            for j in range(0, 256, 64):
                window = x[:, :, i:i + 64, j:j + 64]
                expected[i:i + 64, j:j + 64] = model.predict(
                    window)[0].pred_sem_seg.data[0]
    assert torch.equal(got, expected)


def test_protocol_pipelines_for_cityscapes():
    assert full_resolution_pipeline(CITYSCAPES_TEST, 'c.py') == [
        CITYSCAPES_TEST[0], CITYSCAPES_TEST[2], CITYSCAPES_TEST[3]]
    tta = aug_test_pipeline(CITYSCAPES_TEST, [0.5, 1.0, 1.5], True, 'c.py')
    assert tta[0] == CITYSCAPES_TEST[0] and len(tta) == 2
    resizes, flips, annotations, pack = tta[1]['transforms']
    assert [r['scale'] for r in resizes] == [(512, 256), (1024, 512),
                                              (1536, 768)]
    assert [f['prob'] for f in flips] == [0., 1.]
    assert annotations == [dict(type='DDBLoadAnnotations')]
    assert pack == [dict(type='PackSegInputs')]
    # no resize in the pipeline (full resolution): ratios of the image size
    full = full_resolution_pipeline(CITYSCAPES_TEST, 'c.py')
    tta = aug_test_pipeline(full, [0.75], False, 'c.py')
    assert tta[1]['transforms'][0] == [dict(type='Resize', scale_factor=0.75,
                                            keep_ratio=True)]
    assert len(tta[1]['transforms'][1]) == 1


@pytest.mark.parametrize('kwargs, words', [
    (dict(mode='slide', slide_crop=(64, 64), slide_stride=(96, 32)),
     '--slide-stride'),
    (dict(mode='slide', slide_crop=(0, 64)), '--slide-crop'),
    (dict(aug_test=True, aug_scales=[0.0, 1.0]), '--aug-scales'),
])
def test_bad_protocol_options_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        prepare_test_config(SYNTHETIC_CONFIG, None, **kwargs)


def test_out_and_plot_dir_with_several_metrics():
    """ACDC's two metrics (all of val, per condition): the predictions are
    written once, each metric plots its own confusion matrices."""
    cfg = prepare_test_config(
        osp.join(REPO, 'configs', 'tests', 'acdc_val_dlv2_r101v1c.py'), None,
        out_dir='preds', plot_dir='plots', aug_test=True)
    overall, per_condition = cfg.test_evaluator
    assert overall['output_dir'] == 'preds'
    assert 'output_dir' not in per_condition
    assert overall['plot_dir'] == per_condition['plot_dir'] == 'plots'
    assert cfg.test_cfg == dict(type='DDBTestLoop', amp=False)
    assert cfg.model['type'] == 'DDBTTAModel'
    assert cfg.test_dataloader.dataset.pipeline[-1]['type'] == 'TestTimeAug'


def test_python_api_predicts_what_test_py_wrote(runs, tiny_data):
    """``init_segmentor`` + ``inference`` on arrays give the predictions
    ``tools/test.py --out`` wrote, also batched; ``amp=True`` (bf16) agrees
    with fp32 on almost every pixel."""
    from mmseg_ddb.apis import inference, init_segmentor
    model = init_segmentor(SYNTHETIC_CONFIG, str(runs['tmp'] / 'native.pth'),
                           device='cpu')
    paths = sorted(glob.glob(osp.join(tiny_data, 'cs', 'leftImg8bit', 'val',
                                      '*', '*.png')))
    images = [cv2.imread(p) for p in paths]
    fp32 = inference(model, images, batch_size=3)
    amp = inference(model, images, amp=True)
    for path, pred, pred_amp in zip(paths, fp32, amp):
        stem = osp.splitext(osp.basename(path))[0] + '.png'
        assert np.array_equal(pred, runs['out']['native'][stem])
        assert (pred_amp == pred).mean() > 0.95
