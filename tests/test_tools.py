"""The command-line tools, run as a user runs them (METHOD.md 4).

Every call runs the real script with ``sys.executable`` in a temporary
directory, on the tiny dataset of ``conftest.py``: forked warm
(tests/warm_tools.py: same script, arguments, environment and folder, minus
the interpreter's imports; test_warm.py checks that a warm training run
equals a fresh one bit for bit), or as a fresh process where the test needs
one (kills, torchrun, shell scripts). One thread per process keeps the
2-core machine responsive and the runs reproducible.
"""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import warm_tools
from conftest import (
    REPO,
    SYNTHETIC_CONFIG,
    add_to_confusion,
    cfg_option_args,
    normalised_input,
    protocol_prediction,
    tiny_options,
)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ddb  # noqa: F401
from mmseg_ddb.datasets.base import CITYSCAPES_METAINFO

TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
INFER = osp.join(REPO, 'tools', 'infer.py')
BENCHMARK = osp.join(REPO, 'tools', 'benchmark.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
           PYTHON=sys.executable)
TIMEOUT = 300


def train_options(root, **extra):
    """8 iterations, a checkpoint every 4, constant lr (no warmup, so that
    8 iterations learn something), validation at the end."""
    return tiny_options(root, **{
        'train_cfg.max_iters': 8,
        'default_hooks.checkpoint.interval': 4,
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'param_scheduler.0.start_factor': 1.0,
        **extra})


def train_cmd(work_dir, opts, *extra):
    return [sys.executable, TRAIN, SYNTHETIC_CONFIG, '--work-dir', work_dir,
            *extra, '--cfg-options', *cfg_option_args(opts)]


def run(cmd, cwd):
    """``cmd`` with ``ENV`` in ``cwd``, as ``subprocess.run`` gives it; a
    ``python tools/X.py`` command is forked warm (tests/warm_tools.py)."""
    return warm_tools.shared(ENV).run(cmd, str(cwd), TIMEOUT)


def ok(res):
    assert res.returncode == 0, (res.stdout[-3000:] + res.stderr[-3000:])
    return res


@pytest.fixture(scope='module')
def trained(tiny_data, tmp_path_factory):
    """An uninterrupted 8-iteration run: its work dir."""
    tmp = tmp_path_factory.mktemp('trained')
    work_dir = str(tmp / 'work')
    ok(run(train_cmd(work_dir, train_options(tiny_data), '--final-metrics',
                     osp.join(work_dir, 'final.json')), tmp))
    assert osp.isfile(osp.join(work_dir, 'iter_8.pth'))
    return work_dir


def protocol_miou(cfg, checkpoint, image_dir, label_dir):
    """mIoU by hand: whole image, softmax resized to the label size, argmax,
    one confusion matrix over the set."""
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    model.eval()
    conf = np.zeros((19, 19), np.int64)
    images = sorted(glob.glob(osp.join(image_dir, '*', '*_leftImg8bit.png')))
    assert images
    predicted = set()
    for path in images:
        label_path = path.replace(image_dir, label_dir).replace(
            '_leftImg8bit.png', '_gtFine_labelTrainIds.png')
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        pred = protocol_prediction(model, normalised_input(cv2.imread(path)),
                                   label.shape)
        add_to_confusion(conf, label, pred)
        keep = label != 255
        predicted |= set(np.unique(pred[keep]).tolist())
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, tp / union, np.nan)
    return 100 * np.nanmean(iou), 100 * iou, predicted


def test_train_then_test_miou_matches_independent_computation(
        trained, tiny_data, tmp_path):
    out = str(tmp_path / 'm.json')
    res = ok(run([sys.executable, TEST, SYNTHETIC_CONFIG,
                  osp.join(trained, 'iter_8.pth'), '--eval', 'mIoU',
                  '--metrics-out', out, '--work-dir', str(tmp_path / 'w'),
                  '--cfg-options', *cfg_option_args(tiny_options(tiny_data))],
                 tmp_path))
    with open(out) as f:
        metrics = json.load(f)
    cfg = Config.fromfile(SYNTHETIC_CONFIG)
    cs = osp.join(tiny_data, 'cs')
    miou, iou, predicted = protocol_miou(
        cfg, osp.join(trained, 'iter_8.pth'),
        osp.join(cs, 'leftImg8bit', 'val'), osp.join(cs, 'gtFine', 'val'))
    assert len(predicted) > 1, 'degenerate model: the check would be weak'
    assert metrics['mIoU'] == pytest.approx(miou, abs=0.01)
    assert f'mIoU: {metrics["mIoU"]:.2f}' in res.stdout
    names = CITYSCAPES_METAINFO['classes']
    assert list(metrics['per_class']) == list(names)
    for name, value in zip(names, iou):
        if np.isnan(value):
            assert metrics['per_class'][name] is None, name
        else:
            assert metrics['per_class'][name] == pytest.approx(
                value, abs=0.01), name
    # train.py --final-metrics: the validation after the last iteration
    # scored the same checkpoint with the same numbers, to the last digit
    with open(osp.join(trained, 'final.json')) as f:
        final = json.load(f)
    assert final['checkpoint'] == osp.join(trained, 'iter_8.pth')
    assert final['iteration'] == 8
    for key in ('mIoU', 'mAcc', 'aAcc', 'per_class'):
        assert final[key] == metrics[key], key


def test_final_metrics_only_where_validation_is_the_test(tiny_cfg):
    from mmseg_ddb.apis.train import add_final_metrics
    cfg = tiny_cfg.copy()
    assert add_final_metrics(cfg, 'm.json', 'c.py')
    assert cfg.custom_hooks[-1] == dict(type='FinalMetricsHook', out='m.json',
                                        config='c.py')
    other = tiny_cfg.copy()
    other.test_dataloader = dict(other.test_dataloader, batch_size=3)
    n = len(other.get('custom_hooks') or [])
    assert not add_final_metrics(other, 'm.json', 'c.py')
    assert len(other.get('custom_hooks') or []) == n
    other = tiny_cfg.copy()
    other.val_cfg = None
    assert not add_final_metrics(other, 'm.json', 'c.py')


def wait_for_checkpoint(proc, work_dir, name, timeout=TIMEOUT):
    """Poll ``last_checkpoint`` (written after the checkpoint is complete)."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    deadline = time.time() + timeout
    while time.time() < deadline:
        if osp.isfile(pointer):
            with open(pointer) as f:
                if f.read().strip().endswith(name):
                    return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def kill_after_checkpoint(cmd, work_dir, tmp_path, name='iter_4.pth'):
    """Start a training command and SIGKILL it right after checkpoint
    ``name`` is complete; fail if it finished first."""
    with open(tmp_path / 'killed.log', 'w') as log:
        proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=ENV, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            reached = wait_for_checkpoint(proc, work_dir, name)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert reached, (tmp_path / 'killed.log').read_text()[-3000:]
    assert proc.returncode == -signal.SIGKILL
    if osp.exists(osp.join(work_dir, 'iter_8.pth')):
        pytest.fail('the run finished before it could be killed')


def test_resume_of_a_killed_run_matches_an_uninterrupted_one(
        trained, tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    opts = train_options(tiny_data)
    kill_after_checkpoint(train_cmd(work_dir, opts), work_dir, tmp_path)

    res = ok(run(train_cmd(work_dir, opts, '--resume'), tmp_path))
    assert 'resumed' in res.stdout and 'iter: 4' in res.stdout
    resumed = torch.load(osp.join(work_dir, 'iter_8.pth'), weights_only=True)
    straight = torch.load(osp.join(trained, 'iter_8.pth'), weights_only=True)
    assert resumed['meta']['iter'] == straight['meta']['iter'] == 8
    a, b = resumed['state_dict'], straight['state_dict']
    assert set(a) == set(b)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    opt_a, opt_b = (c['optimizer']['state'] for c in (resumed, straight))
    for p in opt_a:
        for k, v in opt_a[p].items():
            assert torch.equal(v, opt_b[p][k]), (p, k)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_gloo_processes(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    opts = train_options(tiny_data, **{'train_cfg.max_iters': 4})
    env = dict(ENV, PORT=str(free_port()))
    res = subprocess.run(
        ['bash', DIST_TRAIN, SYNTHETIC_CONFIG, '2', '--work-dir', work_dir,
         '--cfg-options', *cfg_option_args(opts)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=TIMEOUT)
    ok(res)
    assert 'Distributed training: True' in res.stdout
    ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 4
    assert 'mIoU' in res.stdout  # validation gathered over both ranks
    assert 'Traceback' not in res.stderr


# (bad command lines and inputs: tests/test_bad_inputs.py, the one matrix)


def test_infer_writes_one_mask_and_overlay_per_image_of_any_size(
        trained, tmp_path):
    folder = tmp_path / 'images'
    sizes = {'a.png': (100, 180), 'b.jpg': (64, 64), 'sub/c.png': (37, 91)}
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        os.makedirs(osp.dirname(str(folder / name)), exist_ok=True)
        cv2.imwrite(str(folder / name),
                    rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    out = tmp_path / 'out'
    ok(run([sys.executable, INFER, SYNTHETIC_CONFIG,
            osp.join(trained, 'iter_8.pth'), str(folder), '--out', str(out),
            '--save-label'], tmp_path))
    for name, (h, w) in sizes.items():
        stem = osp.splitext(osp.basename(name))[0]
        mask = cv2.imread(str(out / f'{stem}_mask.png'))
        overlay = cv2.imread(str(out / f'{stem}_overlay.png'))
        label = cv2.imread(str(out / f'{stem}_trainIds.png'),
                           cv2.IMREAD_UNCHANGED)
        assert mask.shape == overlay.shape == (h, w, 3)
        assert label.shape == (h, w) and label.max() < 19
        # the mask is the label in the Cityscapes palette (BGR on disk)
        palette = np.array(CITYSCAPES_METAINFO['palette'], np.uint8)
        assert np.array_equal(mask[..., ::-1], palette[label])
    assert not [f for f in os.listdir(out) if f.startswith('.tmp-')]


def test_show_dir_saves_painted_predictions(trained, tiny_data, tmp_path):
    show = tmp_path / 'show'
    ok(run([sys.executable, TEST, SYNTHETIC_CONFIG,
            osp.join(trained, 'iter_8.pth'), '--show-dir', str(show),
            '--work-dir', str(tmp_path / 'wd'), '--cfg-options',
            *cfg_option_args(train_options(tiny_data))], tmp_path))
    painted = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(painted) == 4  # one per val image


@pytest.mark.parametrize('extra', [[], ['--amp', '--channels-last',
                                         '--infer-shape', '32', '64',
                                         '--infer-label-shape', '64', '128']])
def test_benchmark_reports_every_field(tmp_path, extra):
    out = tmp_path / 'bench.json'
    ok(run([sys.executable, BENCHMARK,
            osp.join(REPO, 'configs', 'synthetic', 'st_cu_synthetic.py'),
            '--iters', '1', '--warmup', '0', '--batch-size', '1',
            '--crop', '64', '--loader-batches', '0', '--out', str(out),
            *extra], tmp_path))
    res = json.loads(out.read_text())
    assert res['amp'] == bool(extra) and res['channels_last'] == bool(extra)
    assert res['amp_dtype'] == ('torch.bfloat16' if extra else None)
    assert res['inference_label_shape'] == ([64, 128] if extra else [64, 64])
    for key in ('supervised_ms', 'st_ms', 'ckd_ms', 'inference_ms',
                'st_over_supervised', 'ckd_over_supervised', 'bridging_ms',
                'bridging_share_of_st', 'supervised_peak_mb', 'st_peak_mb',
                'ckd_peak_mb', 'inference_images_per_s', 'forward_gflop',
                'loader_pairs_per_s', 'device', 'torch'):
        assert key in res, key
    assert res['st_ms'] > 0 and res['forward_gflop'] > 0
    assert res['st_over_supervised'] == pytest.approx(
        res['st_ms'] / res['supervised_ms'])


def test_gpu_benchmark_script_runs_end_to_end_on_the_cpu(tmp_path):
    """tools/benchmark_gpu.sh, with its device, config and sizes overridden
    (the tiny synthetic network at 64x64 on the CPU): the three precision
    runs, their JSON, and the summary lines with the bf16 ratios."""
    out = tmp_path / 'bench'
    env = dict(ENV, PYTHON=sys.executable, DEVICE='cpu', LOADER_BATCHES='0',
               CONFIG=osp.join(REPO, 'configs', 'synthetic',
                               'st_cu_synthetic.py'),
               TRANSFORMER_CONFIGS=osp.join(REPO, 'configs', 'synthetic',
                                            'st_cu_daformer_mit-tiny_synthetic.py'),
               BENCH_ARGS='--crop 64 --batch-size 1 --iters 1 --warmup 0 '
                          '--infer-shape 32 64 --infer-label-shape 64 128')
    res = subprocess.run(['bash', osp.join(REPO, 'tools', 'benchmark_gpu.sh'),
                          str(out)], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    ok(res)
    runs = {name: json.loads((out / f'{name}.json').read_text())
            for name in ('fp32', 'bf16', 'bf16_channels_last')}
    assert [r['amp'] for r in runs.values()] == [False, True, True]
    assert [r['channels_last'] for r in runs.values()] == [False, False, True]
    assert runs['fp32']['inference_label_shape'] == [64, 128]  # the override
    lines = res.stdout.splitlines()
    for name, r in runs.items():
        line = next(x for x in lines if x.startswith(name + ' '))
        speedup = runs['fp32']['st_ms'] / r['st_ms']
        assert f'ST speed-up {speedup:.2f}x' in line
    assert not (out / 'loader_8_workers.json').exists()
    # the transformer rows: fp32 and bf16, one line each
    for prec in ('fp32', 'bf16'):
        name = f'st_cu_daformer_mit-tiny_synthetic_{prec}'
        row = json.loads((out / f'{name}.json').read_text())
        assert row['amp'] == (prec == 'bf16') and row['forward_gflop_per_image'] > 0
        line = next(ln for ln in lines if ln.startswith(name + ':'))
        assert f"CKD/sup {row['ckd_over_supervised']:.2f}" in line


def test_loader_benchmark_on_synthetic_data_keeps_the_real_pipeline(
        tmp_path):
    """--loader-data synthetic: the R101 ST config's loader (its GTA5 and
    Cityscapes pipelines, resize + 512 crop) on synthetic scenes written in
    those layouts at the size asked for."""
    from mmengine.runner import Runner

    from mmseg_ddb.apis.benchmark import loader_throughput, on_synthetic_data
    from mmseg_ddb.errors import ConfigError
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'gtav2cityscapes',
        'r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'))
    dl_cfg = on_synthetic_data(cfg.train_dataloader, str(tmp_path / 'syn'),
                               height=96, width=192, num=2)
    dl_cfg.num_workers, dl_cfg.persistent_workers = 0, False
    data = next(iter(Runner.build_dataloader(dl_cfg, seed=0)))
    for domain in ('source', 'target'):
        assert len(data[domain]['inputs']) == 4  # the config's batch
        assert data[domain]['inputs'][0].shape == (3, 512, 512)
    image = cv2.imread(str(tmp_path / 'syn' / 'gta' / 'images' /
                           '00000.png'))
    assert image.shape == (96, 192, 3)
    # a dataset without a synthetic layout is refused by name
    syn = Config.fromfile(osp.join(
        REPO, 'configs', 'gta+syn2cs',
        'r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'))
    with pytest.raises(ConfigError, match='SynscapesDataset'):
        loader_throughput(syn, 1, 'synthetic')


def test_dist_test_three_gloo_processes_match_single_process(
        trained, tiny_data, tmp_path):
    """dist_test.sh with 3 gloo processes scores the whole set once: the same
    mIoU as tools/test.py in one process. The 4 val images do not split over
    3 ranks: a padding sampler would score one of them twice."""
    ckpt = osp.join(trained, 'iter_8.pth')
    opts = cfg_option_args(train_options(tiny_data))
    single = tmp_path / 'single.json'
    ok(run([sys.executable, TEST, SYNTHETIC_CONFIG, ckpt, '--work-dir',
            str(tmp_path / 'wd1'), '--metrics-out', str(single),
            '--cfg-options', *opts], tmp_path))
    double = tmp_path / 'double.json'
    res = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_test.sh'), SYNTHETIC_CONFIG,
         ckpt, '3', '--work-dir', str(tmp_path / 'wd2'), '--metrics-out',
         str(double), '--cfg-options', *opts],
        cwd=str(tmp_path), env=dict(ENV, PORT=str(free_port())),
        capture_output=True, text=True, timeout=TIMEOUT)
    ok(res)
    a, b = (json.loads(p.read_text()) for p in (single, double))
    assert a['mIoU'] == b['mIoU'] and a['per_class'] == b['per_class']
