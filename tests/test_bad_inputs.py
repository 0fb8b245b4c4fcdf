"""The bad-input matrix: every command-line tool, fed
broken data, files, options and environments, run as a user runs it.

Each case runs the real script in a subprocess (``sys.executable``) and must

* exit with status 2 and print exactly one stderr line starting ``error:``
  that names the problem (the file, key or value: ``words``),
* print no Python traceback,
* leave every pre-existing file it could touch unchanged: the watched paths
  (data root, checkpoints, prototype files, work and output folders) are
  snapshotted (path -> sha256, mtime, size) right before the command and
  compared after it; only the new files a case allows may appear (logs in a
  fresh work dir, say), and never a ``.tmp-*`` (half-written) file.

One case is a "recovers" case: a dataset converter SIGKILLed mid-run and
rerun must finish with status 0 and correct outputs.

Environment failures are simulated honestly, in ways that fail if the tool's
handling is broken (tests run as root here and in CI, where ``chmod 000``
alone does not stop reads):

* unreadable files / folders, not-writable output folders: the files are
  ``chmod 000`` / ``0555`` *and* the command runs without the capabilities
  that let root ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
  dropped from the process's capability sets and its bounding set, see
  ``warm_tools.drop_dac``). The files
  belong to root, so the owner bits apply and open() fails with EACCES as
  it does for any user. A probe checks that the drop works, else the cases
  are skipped (as a non-root user plain ``chmod`` is enough).
* disk full during a checkpoint save: ``RLIMIT_FSIZE`` (1 MiB, far below a
  checkpoint, far above the logs); Python ignores SIGXFSZ, so the write
  fails with EFBIG like a full disk fails with ENOSPC. The run resumes from
  a work dir whose checkpoints were written by an ordinary run; the first
  checkpoint of the resumed run is the one that cannot be written.
* more GPUs than present: the tools are asked for GPU ``N`` where ``N`` is
  ``torch.cuda.device_count()``, which does not exist on any machine.

All commands run at once, a few at a time, each forked warm from a process
that imported the tools once (tests/warm_tools.py: the command runs as the
same script, arguments, environment and folder; the launch options are
applied in the fork, the capabilities dropped from the process's own sets
as well, since no ``exec`` follows); the kill-and-rerun converter case runs
cold.
"""
import fnmatch
import glob
import hashlib
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
import pytest
import torch
import warm_tools
from conftest import (
    REPO,
    SYNTHETIC_CONFIG,
    cfg_option_args,
    tiny_options,
    write_cityscapes,
    write_gta,
)

import mmseg_ddb  # noqa: F401

TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
INFER = osp.join(REPO, 'tools', 'infer.py')
PROTO = osp.join(REPO, 'tools', 'cal_prototypes', 'cal_prototype.py')
PIPELINE = osp.join(REPO, 'tools', 'ddb_pipeline.py')
GTA_CONVERTER = osp.join(REPO, 'tools', 'convert_datasets', 'gta.py')
BENCHMARK = osp.join(REPO, 'tools', 'benchmark.py')
GTA_SYN_CONFIG = osp.join(
    REPO, 'configs', 'gta+syn2cs',
    'r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py')
ST_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'st_ca_synthetic.py')
CKD_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'ckd_synthetic.py')
PIPELINE_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'ddb_synthetic.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
TIMEOUT = 300
#: commands running at the same time
WORKERS = int(os.environ.get('DDB_BAD_INPUT_WORKERS', '3'))
#: what mmengine writes into a fresh work dir before a failure
WORK_DIR_LOGS = ('[0-9]*_[0-9]*/*', '*.py')


# ---------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------
def _digest(path: str):
    st = os.lstat(path)
    if not osp.isfile(path) or osp.islink(path):
        return ('special', st.st_mtime_ns, st.st_size)
    with open(path, 'rb') as f:
        return (hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns,
                st.st_size)


def snapshot(roots: Sequence[str]) -> dict:
    """{path: (sha256, mtime_ns, size)} of every file under ``roots``
    (files or folders; a missing root has no files)."""
    snap = {}
    for root in roots:
        if osp.isdir(root) and not osp.islink(root):
            for dirpath, _, files in os.walk(root):
                for name in files:
                    path = osp.join(dirpath, name)
                    snap[path] = _digest(path)
        elif osp.lexists(root):
            snap[root] = _digest(root)
    return snap


def _relative(path: str, roots: Sequence[str]) -> str:
    for root in roots:
        if path.startswith(root.rstrip('/') + '/'):
            return osp.relpath(path, root)
    return path


def snapshot_problems(case: 'Case', before: dict, after: dict) -> List[str]:
    """Pre-existing files that changed or vanished, and new files the case
    does not allow (a ``.tmp-*`` file never is)."""
    problems = []
    for path, state in before.items():
        rel = _relative(path, case.watch)
        if any(fnmatch.fnmatch(rel, p) for p in case.changed_ok):
            continue
        if path not in after:
            problems.append(f'vanished: {path}')
        elif after[path] != state:
            problems.append(f'changed: {path}')
    for path in sorted(set(after) - set(before)):
        rel = _relative(path, case.watch)
        if osp.basename(path).startswith('.tmp-') or not any(
                fnmatch.fnmatch(rel, p) for p in case.new_ok):
            problems.append(f'new file: {path}')
    return problems


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------
@dataclass
class Case:
    """One bad command line.

    Attributes:
        argv: the tool and its arguments (``python`` is put in front).
        words: what the ``error:`` line must name.
        watch: files and folders that must not change (see ``new_ok`` /
            ``changed_ok``, fnmatch patterns relative to their watched root).
        launch: :func:`run`'s launch options (``--drop-dac``, ``--fsize N``).
        before: runs first (in the worker, may run commands); its checks
            fail the case.
        after: ``after(result)`` extra checks once the command ran.
        rc: the expected exit status.
        cwd: working directory (default: a fresh folder per case).
    """
    argv: List[str]
    words: List[str]
    watch: List[str] = field(default_factory=list)
    new_ok: Sequence[str] = ()
    changed_ok: Sequence[str] = ()
    launch: Sequence[str] = ()
    before: Optional[Callable[[], None]] = None
    after: Optional[Callable[[dict], None]] = None
    rc: int = 2
    cwd: Optional[str] = None
    skip: Optional[str] = None


def run(cmd, cwd, timeout=TIMEOUT, launch: Sequence[str] = ()):
    """``cmd`` with ``ENV`` in ``cwd``, as ``subprocess.run`` gives it,
    forked warm; ``launch``: ``--drop-dac`` (no CAP_DAC_OVERRIDE /
    CAP_DAC_READ_SEARCH: file modes apply to root too) and ``--fsize N``
    (RLIMIT_FSIZE), applied before the tool starts (warm_tools.prepare)."""
    return warm_tools.shared(ENV).run(cmd, cwd, timeout,
                                      launch=list(launch))


def run_case(name: str, case: Case, tmp: str) -> dict:
    cwd = case.cwd or osp.join(tmp, 'cwd', name)
    os.makedirs(cwd, exist_ok=True)
    result = dict(name=name)
    try:
        if case.before is not None:
            case.before()
        before = snapshot(case.watch)
        started = time.time()
        res = run([sys.executable, *case.argv], cwd, launch=case.launch)
        result.update(rc=res.returncode, out=res.stdout, err=res.stderr,
                      seconds=time.time() - started,
                      problems=snapshot_problems(case, before,
                                                 snapshot(case.watch)))
        if case.after is not None:
            case.after(result)
    except Exception as exc:  # reported by the test of this case
        result['failure'] = f'{type(exc).__name__}: {exc}'
    return result


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def plain_checkpoint(path: str, depth: int = 18, drop: str = None) -> str:
    """A checkpoint of the synthetic source-only segmentor (random weights,
    as a trained one stores them); ``depth`` changes the backbone, ``drop``
    removes the keys with that prefix."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(SYNTHETIC_CONFIG)
    cfg.model.backbone.depth = depth
    torch.manual_seed(0)
    sd = MODELS.build(cfg.model).state_dict()
    if drop:
        sd = {k: v for k, v in sd.items() if not k.startswith(drop)}
    torch.save(dict(state_dict=sd, meta=dict(iter=400)), path)
    return path


def prototype_file(path: str, protos: torch.Tensor, **meta) -> str:
    """Written by the same function as cal_prototype.py's output."""
    from mmseg_ddb.utils import save_prototypes
    save_prototypes(path, protos, dict(
        num_classes=protos.shape[0], feature_dim=protos.shape[-1], **meta))
    return path


def truncate(path: str) -> str:
    """Cut a file in half (a copy interrupted half way)."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return path


def train_options(data_root: str, val_root: str, **extra) -> dict:
    """The synthetic source-only config on a GTA-layout ``data_root`` and a
    Cityscapes-layout ``val_root``: 2 iterations, batch 2, no workers."""
    opts = tiny_options(osp.dirname(val_root), **{
        'train_dataloader.dataset.data_root': data_root,
        'train_cfg.max_iters': 2})
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.data_root'] = val_root
    opts.update(extra)
    return opts


def uda_options(root: str, **extra) -> dict:
    """The synthetic UDA configs on the tiny data, 2 iterations, no init."""
    from test_uda_tools import uda_options as base
    opts = base(root, **{'train_cfg.max_iters': 2,
                         'train_cfg.val_interval': 2})
    opts.update(extra)
    return opts


def can_drop_dac(tmp: str) -> Optional[str]:
    """None if a command run with ``--drop-dac`` (as the cases run) cannot
    read a ``chmod 000`` file; else why the permission cases cannot run
    here."""
    probe = osp.join(tmp, 'probe.txt')
    with open(probe, 'w') as f:
        f.write('x')
    os.chmod(probe, 0)
    script = osp.join(tmp, 'probe.py')
    with open(script, 'w') as f:
        f.write(f'open({probe!r}).read()\n')
    res = run([sys.executable, script], tmp, timeout=60,
              launch=['--drop-dac'])
    if res.returncode != 0 and 'PermissionError' in res.stderr:
        return None
    return ('cannot make a file unreadable for this user (root with '
            f'capabilities that cannot be dropped?): {res.stderr[-300:]}')


CASES = [
    # data
    'missing_data_root', 'empty_data_root', 'image_without_label',
    'label_values_out_of_range', 'label_size_mismatch', 'truncated_png_image',
    'unreadable_image', 'unreadable_label_folder',
    'infer_corrupt_image', 'infer_no_images',
    # checkpoints and prototypes
    'ckd_prototypes_wrong_shape', 'ckd_prototypes_of_another_model',
    'ckd_teacher_of_another_architecture', 'load_from_another_architecture',
    'test_checkpoint_of_another_architecture', 'missing_imagenet_init',
    'test_not_a_checkpoint',
    'infer_truncated_checkpoint', 'proto_checkpoint_missing_keys',
    # config and options
    'unknown_cfg_option_key', 'test_unknown_cfg_option_key',
    'unknown_key_in_config_file',
    'unknown_class', 'config_not_found', 'config_syntax_error',
    'max_iters_zero', 'max_iters_negative', 'resume_from_missing',
    'test_unsupported_metric',
    # GPUs
    'train_gpu_beyond_count', 'test_gpu_beyond_count',
    'proto_cuda_beyond_count',
    # outputs
    'infer_out_not_writable', 'train_work_dir_not_writable',
    'test_metrics_out_under_a_file', 'convert_stats_dir_under_a_file',
    'disk_full_during_checkpoint', 'disk_full_at_start',
    # pipeline, converters and the benchmark
    'pipeline_unknown_stage', 'pipeline_only_without_inputs',
    'convert_missing_input_dir',
    # benchmark
    'benchmark_synthetic_loader_of_another_dataset',
    'benchmark_negative_loader_workers',
    'convert_killed_then_rerun',
]


@pytest.fixture(scope='module')
def matrix(tiny_data, tmp_path_factory):
    """Build every case's inputs, run all cases and return
    ``{case: (Case, result)}``."""
    tmp = str(tmp_path_factory.mktemp('bad_inputs'))
    no_dac = can_drop_dac(tmp)
    cs = osp.join(tiny_data, 'cs')
    gta = osp.join(tiny_data, 'gta')
    p = lambda *parts: osp.join(tmp, *parts)  # noqa: E731
    os.makedirs(p('ckpt'))
    ckpt = plain_checkpoint(p('ckpt', 'plain.pth'))
    r34 = plain_checkpoint(p('ckpt', 'r34.pth'), depth=34)
    no_head = plain_checkpoint(p('ckpt', 'no_head.pth'), drop='decode_head')
    half = shutil.copy(ckpt, p('ckpt', 'half.pth'))
    truncate(half)
    text = p('ckpt', 'notes.pth')
    with open(text, 'w') as f:
        f.write('best model: iteration 40000, 62.7 mIoU\n')
    os.makedirs(p('protos'))
    good = prototype_file(p('protos', 'good.pth'), torch.randn(19, 64),
                          config=ST_CONFIG, checkpoint=ckpt)
    transposed = prototype_file(p('protos', 'transposed.pth'),
                                torch.randn(64, 19))
    other_cfg = 'configs/gtav2cityscapes/' \
        'r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'
    other = prototype_file(p('protos', 'r101.pth'), torch.randn(19, 128),
                           config=other_cfg,
                           checkpoint='/runs/r1_st_cu/iter_40000.pth')
    shared = [tiny_data, p('ckpt'), p('protos')]

    def out_dir(name):
        os.makedirs(p('out', name))
        return p('out', name)

    def gta_copy(name, n=2):
        return write_gta(p('data', name), n)

    def train(name, data_root, *extra, config=SYNTHETIC_CONFIG, wd=None,
              **option):
        wd = wd or p('work', name)
        opts = train_options(data_root, cs, **option)
        return [TRAIN, config, '--work-dir', wd, *extra, '--cfg-options',
                *cfg_option_args(opts)], wd

    def test(name, checkpoint, *extra, val_root=cs, **option):
        wd = p('work', name)
        opts = tiny_options(tiny_data, **{
            'test_dataloader.dataset.data_root': val_root, **option})
        return [TEST, SYNTHETIC_CONFIG, checkpoint, '--work-dir', wd, *extra,
                '--cfg-options', *cfg_option_args(opts)], wd

    def ckd(name, proto0=good, teacher0=ckpt):
        wd = p('work', name)
        opts = uda_options(tiny_data, **{
            'uda.teachers.0.checkpoint': teacher0,
            'uda.teachers.0.prototypes': proto0,
            'uda.teachers.1.checkpoint': ckpt,
            'uda.teachers.1.prototypes': good})
        return [TRAIN, CKD_CONFIG, '--work-dir', wd, '--cfg-options',
                *cfg_option_args(opts)], wd

    proto_opts = cfg_option_args({
        k: v for k, v in uda_options(tiny_data).items()
        if k.startswith('train_dataloader.dataset')})
    cases = {}

    def add(name, argv, words, watch=(), wd=None, **kw):
        watch = list(watch) + shared + ([wd] if wd else [])
        if wd and 'new_ok' not in kw:
            kw['new_ok'] = WORK_DIR_LOGS
        cases[name] = Case(argv, [str(w) for w in words], watch, **kw)

    # -- data ---------------------------------------------------------------
    nowhere = p('data', 'nowhere')
    argv, wd = train('missing_data_root', nowhere)
    add('missing_data_root', argv, [nowhere, 'does not exist'], wd=wd)

    empty = p('data', 'empty')
    for sub in ('images', 'labels'):
        os.makedirs(osp.join(empty, sub))
    argv, wd = train('empty_data_root', empty)
    add('empty_data_root', argv, [osp.join(empty, 'images'), 'no "*.png"'],
        [empty], wd)

    root = gta_copy('no_label')
    os.remove(osp.join(root, 'labels', '00001_labelTrainIds.png'))
    argv, wd = train('image_without_label', root)
    add('image_without_label', argv,
        [osp.join(root, 'images', '00001.png'),
         osp.join(root, 'labels', '00001_labelTrainIds.png')], [root], wd)

    root = write_cityscapes(p('data', 'values'), 2)
    bad_label = osp.join(root, 'gtFine', 'val', 'city',
                         'city_000000_000001_gtFine_labelTrainIds.png')
    label = cv2.imread(bad_label, cv2.IMREAD_UNCHANGED)
    label[10:12, 20:22] = 33  # a Cityscapes label id, not a train id
    label[40, 40] = 19
    cv2.imwrite(bad_label, label)
    argv, wd = test('label_values_out_of_range', ckpt, val_root=root)
    add('label_values_out_of_range', argv,
        [bad_label, '[19, 33]', 'outside 0..18 and 255'], [root], wd)

    root = gta_copy('size')
    bad_label = osp.join(root, 'labels', '00001_labelTrainIds.png')
    cv2.imwrite(bad_label, cv2.imread(bad_label, cv2.IMREAD_UNCHANGED)[:100])
    argv, wd = train('label_size_mismatch', root)
    add('label_size_mismatch', argv,
        [bad_label, '256x100', osp.join(root, 'images', '00001.png'),
         '256x128'], [root], wd)

    root = gta_copy('truncated_image')
    bad = truncate(osp.join(root, 'images', '00001.png'))
    argv, wd = train('truncated_png_image', root)
    add('truncated_png_image', argv, ['cannot read image', bad], [root], wd)

    root = gta_copy('unreadable_image')
    bad = osp.join(root, 'images', '00001.png')
    os.chmod(bad, 0)
    argv, wd = train('unreadable_image', root)
    add('unreadable_image', argv, [bad, 'Permission denied', 'permissions'],
        [root], wd, launch=['--drop-dac'], skip=no_dac)

    root = gta_copy('unreadable_labels')
    bad = osp.join(root, 'labels')
    os.chmod(bad, 0)
    argv, wd = train('unreadable_label_folder', root)
    add('unreadable_label_folder', argv,
        ['cannot list folder', bad, 'Permission denied'], [root], wd,
        launch=['--drop-dac'], skip=no_dac)

    folder = p('data', 'photos')
    os.makedirs(folder)
    cv2.imwrite(osp.join(folder, 'a.png'), np.full((40, 60, 3), 90, np.uint8))
    cv2.imwrite(osp.join(folder, 'b.png'), np.full((40, 60, 3), 90, np.uint8))
    with open(osp.join(folder, 'b.png'), 'r+b') as f:
        f.truncate(60)
    out = out_dir('infer_corrupt_image')

    def outputs_complete(result, out=out):
        for name in glob.glob(osp.join(out, '*')):  # a.png's are complete
            assert cv2.imread(name) is not None, name
        assert not glob.glob(osp.join(out, 'b_*')), os.listdir(out)

    add('infer_corrupt_image',
        [INFER, SYNTHETIC_CONFIG, ckpt, folder, '--out', out],
        ['cannot read image', osp.join(folder, 'b.png')], [folder, out],
        new_ok=['a_mask.png', 'a_overlay.png'], after=outputs_complete)
    nothing = p('data', 'no_photos_here')
    add('infer_no_images',
        [INFER, SYNTHETIC_CONFIG, ckpt, nothing, '--out', out_dir('no_images')],
        [nothing])

    # -- checkpoints and prototypes ------------------------------------------
    argv, wd = ckd('ckd_prototypes_wrong_shape', proto0=transposed)
    add('ckd_prototypes_wrong_shape', argv, [transposed, '[64, 19]',
                                             '[19, 64]'], wd=wd)
    argv, wd = ckd('ckd_prototypes_of_another_model', proto0=other)
    add('ckd_prototypes_of_another_model', argv,
        [other, '[19, 128]', '[19, 64]', other_cfg], wd=wd)
    argv, wd = ckd('ckd_teacher_of_another_architecture', teacher0=r34)
    add('ckd_teacher_of_another_architecture', argv,
        [r34, 'does not fit', 'backbone.layer1.2'], wd=wd)
    argv, wd = train('load_from_another_architecture', gta, '--load-from',
                     r34)
    add('load_from_another_architecture', argv,
        [r34, 'does not fit', 'backbone.layer1.2'], wd=wd)
    argv, wd = test('test_checkpoint_of_another_architecture', r34)
    add('test_checkpoint_of_another_architecture', argv,
        [r34, 'does not fit', 'backbone.layer1.2'], wd=wd)
    init = p('ckpt', 'nowhere', 'r18.pth')
    argv, wd = train('missing_imagenet_init', gta,
                     **{'model.pretrained': init})
    add('missing_imagenet_init', argv, [init, 'model.pretrained'], wd=wd)
    argv, wd = test('test_not_a_checkpoint', text)
    add('test_not_a_checkpoint', argv, [text, 'not a PyTorch checkpoint'],
        wd=wd)
    out = out_dir('infer_truncated_checkpoint')
    add('infer_truncated_checkpoint',
        [INFER, SYNTHETIC_CONFIG, half, osp.join(cs, 'leftImg8bit'), '--out',
         osp.join(out, 'masks')], [half, 'truncated'], [out])
    out = out_dir('proto_checkpoint_missing_keys')
    add('proto_checkpoint_missing_keys',
        [PROTO, ST_CONFIG, no_head, '--epochs', '1', '--out',
         osp.join(out, 'protos.pth'), '--no-progress', '--cfg-options',
         *proto_opts],
        [no_head, 'missing keys', 'decode_head.conv_seg.weight'], [out])

    # -- config and options --------------------------------------------------
    argv, wd = train('unknown_cfg_option_key', gta,
                     **{'model.backbone.deptth': 34})
    add('unknown_cfg_option_key', argv, ['model.backbone.deptth'], wd=wd)
    argv, wd = test('test_unknown_cfg_option_key', ckpt,
                    **{'test_dataloader.dataset.data_rot': 'x'})
    add('test_unknown_cfg_option_key', argv,
        ['test_dataloader.dataset.data_rot'], wd=wd)
    config = p('configs', 'typo.py')
    os.makedirs(p('configs'))
    with open(config, 'w') as f:
        f.write(f'_base_ = [{SYNTHETIC_CONFIG!r}]\n'
                'model = dict(backbone=dict(deptth=34))\n')
    argv, wd = train('unknown_key_in_config_file', gta, config=config)
    add('unknown_key_in_config_file', argv, ["'deptth'", 'ResNetV1c'],
        [config], wd)
    argv, wd = train('unknown_class', gta,
                     **{'model.decode_head.type': 'NoSuchHead'})
    add('unknown_class', argv, ['NoSuchHead'], wd=wd)
    config = p('configs', 'no_such_config.py')
    argv, wd = train('config_not_found', gta, config=config)
    add('config_not_found', argv, [config, 'not found'], wd=wd)
    config = p('configs', 'unclosed.py')
    with open(config, 'w') as f:
        f.write(f'_base_ = [{SYNTHETIC_CONFIG!r}]\n'
                'model = dict(backbone=dict(depth=18)\n')
    argv, wd = train('config_syntax_error', gta, config=config)
    add('config_syntax_error', argv, [config, 'never closed'], [config], wd)
    argv, wd = train('max_iters_zero', gta, **{'train_cfg.max_iters': 0})
    add('max_iters_zero', argv, ['train_cfg.max_iters', 'got 0'], wd=wd)
    argv, wd = train('max_iters_negative', gta, **{'train_cfg.max_iters': -5})
    add('max_iters_negative', argv, ['train_cfg.max_iters', 'got -5'], wd=wd)
    gone = p('work', 'gone', 'iter_400.pth')
    argv, wd = train('resume_from_missing', gta, '--resume-from', gone)
    add('resume_from_missing', argv, ['--resume-from', gone], wd=wd)
    argv, wd = test('test_unsupported_metric', ckpt, '--eval', 'mDice')
    add('test_unsupported_metric', argv, ['--eval mDice', 'mIoU'], wd=wd)

    # -- GPUs: ask for one more than there is --------------------------------
    gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    argv, wd = train('train_gpu_beyond_count', gta, '--gpu-id', str(gpu))
    add('train_gpu_beyond_count', argv, [f'--gpu-id {gpu}', f'GPU {gpu}'],
        wd=wd)
    argv, wd = test('test_gpu_beyond_count', ckpt, '--gpu-id', str(gpu))
    add('test_gpu_beyond_count', argv, [f'--gpu-id {gpu}', f'GPU {gpu}'],
        wd=wd)
    out = out_dir('proto_cuda_beyond_count')
    add('proto_cuda_beyond_count',
        [PROTO, ST_CONFIG, ckpt, '--device', f'cuda:{gpu}', '--out',
         osp.join(out, 'protos.pth'), '--cfg-options', *proto_opts],
        [f'--device cuda:{gpu}', f'GPU {gpu}'], [out])

    # -- outputs ------------------------------------------------------------
    out = p('readonly', 'out')
    os.makedirs(out)
    with open(osp.join(out, 'earlier_mask.png'), 'wb') as f:
        f.write(b'an earlier result')
    os.chmod(out, 0o555)
    add('infer_out_not_writable',
        [INFER, SYNTHETIC_CONFIG, ckpt, osp.join(cs, 'leftImg8bit'), '--out',
         out], [out, 'not writable', 'Permission denied'], [out],
        launch=['--drop-dac'], skip=no_dac)
    parent = p('readonly', 'runs')
    os.makedirs(parent)
    os.chmod(parent, 0o555)
    wd = osp.join(parent, 'source_only')
    argv, _ = train('train_work_dir_not_writable', gta, wd=wd)
    add('train_work_dir_not_writable', argv,
        ['work dir', wd, 'not writable'], [parent], launch=['--drop-dac'],
        skip=no_dac)
    a_file = osp.join(out_dir('a_file'), 'results')
    with open(a_file, 'w') as f:
        f.write('not a folder\n')
    metrics = osp.join(a_file, 'metrics.json')
    argv, wd = test('test_metrics_out_under_a_file', ckpt, '--metrics-out',
                    metrics)
    add('test_metrics_out_under_a_file', argv,
        [metrics, 'not a folder'], [a_file], wd)
    raw = p('data', 'gta_raw')
    write_raw_gta(raw, 2)
    stats = osp.join(a_file, 'stats')
    add('convert_stats_dir_under_a_file',
        [GTA_CONVERTER, raw, '-o', stats, '--nproc', '1'],
        [stats, 'not writable'], [raw, a_file])

    # disk full: an ordinary run writes iter_1 / iter_2; resumed with a file
    # size limit, its first checkpoint (iter_3) cannot be written
    wd = p('work', 'disk_full')
    opts = train_options(gta, cs, **{
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': 2})
    first = [sys.executable, TRAIN, SYNTHETIC_CONFIG, '--work-dir', wd,
             '--no-validate', '--cfg-options', *cfg_option_args(opts)]

    def two_checkpoints(wd=wd):
        res = run(first, tmp)
        assert res.returncode == 0, res.stderr[-3000:]
        assert sorted(f for f in os.listdir(wd) if f.endswith('.pth')) == [
            'iter_1.pth', 'iter_2.pth']

    def earlier_checkpoint_intact(result, wd=wd):
        with open(osp.join(wd, 'last_checkpoint')) as f:
            assert f.read().strip() == osp.join(wd, 'iter_2.pth')
        ckpt2 = torch.load(osp.join(wd, 'iter_2.pth'), weights_only=True)
        assert ckpt2['meta']['iter'] == 2
        assert not osp.exists(osp.join(wd, 'iter_3.pth'))

    opts['train_cfg.max_iters'] = 3
    add('disk_full_during_checkpoint',
        [TRAIN, SYNTHETIC_CONFIG, '--work-dir', wd, '--resume',
         '--no-validate', '--cfg-options', *cfg_option_args(opts)],
        [osp.join(wd, 'iter_3.pth'), 'File too large', 'free disk space'],
        wd=wd, launch=['--fsize', str(1 << 20)], before=two_checkpoints,
        after=earlier_checkpoint_intact,
        # mmengine dumps the (resumed) config into the work dir on each run
        changed_ok=['source_only_synthetic.py'])

    # disk full from the start: the first writes (the config copies, the
    # log) fail; the log may be cut short, a config copy must be complete
    wd = p('work', 'disk_full_at_start')

    def config_copies_complete(result, wd=wd):
        for path in glob.glob(osp.join(wd, '**', '*.py'), recursive=True):
            with open(path) as f:
                compile(f.read(), path, 'exec')

    argv, _ = train('disk_full_at_start', gta, wd=wd)
    add('disk_full_at_start', argv, [wd, 'File too large'], wd=wd,
        launch=['--fsize', '4096'], after=config_copies_complete)

    # -- pipeline and converters ---------------------------------------------
    wd = p('work', 'pipeline_unknown_stage')
    add('pipeline_unknown_stage',
        [PIPELINE, PIPELINE_CONFIG, '--work-dir', wd, '--only', 'r1_ckdd'],
        ["'r1_ckdd'", 'r1_ckd'], wd=wd, new_ok=(), cwd=REPO)
    wd = p('work', 'pipeline_only')
    add('pipeline_only_without_inputs',
        [PIPELINE, PIPELINE_CONFIG, '--work-dir', wd, '--only', 'r1_ckd'],
        ['r1_ckd', 'init.checkpoint', 'missing'], wd=wd,
        new_ok=['manifest.json'], cwd=REPO)
    add('convert_missing_input_dir',
        [GTA_CONVERTER, nowhere, '--nproc', '1'], [nowhere, 'does not exist'])

    # -- benchmark ----------------------------------------------------------
    bench_out = out_dir('benchmark')
    add('benchmark_synthetic_loader_of_another_dataset',
        [BENCHMARK, GTA_SYN_CONFIG, '--device', 'cpu', '--loader-data',
         'synthetic', '--out', osp.join(bench_out, 'b.json')],
        ['SynscapesDataset', 'no synthetic layout', '--loader-data config'],
        [bench_out])
    add('benchmark_negative_loader_workers',
        [BENCHMARK, ST_CONFIG, '--loader-workers', '-1', '--out',
         osp.join(bench_out, 'b.json')], ['--loader-workers', '>= 0'],
        [bench_out])

    raw = p('data', 'gta_killed')
    ids = write_raw_gta(raw, 300)
    labels = osp.join(raw, 'labels')
    outputs = lambda: sorted(glob.glob(  # noqa: E731
        osp.join(labels, '*_labelTrainIds.png')))
    killed = {}

    def kill_mid_run(raw=raw, labels=labels):
        proc = subprocess.Popen(
            [sys.executable, GTA_CONVERTER, raw, '--nproc', '1'], cwd=tmp,
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + TIMEOUT
            while not outputs() and proc.poll() is None and \
                    time.time() < deadline:
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        done = outputs()
        assert proc.returncode == -signal.SIGKILL and 0 < len(done) < 300, \
            f'not killed mid-run: {len(done)} of 300 converted'
        assert not osp.exists(osp.join(raw, 'sample_class_stats.json'))
        # what a kill during a write leaves: a partial temporary file
        stale = osp.join(labels, f'.tmp-{proc.pid}-00299_labelTrainIds.png')
        with open(stale, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n half')
        killed['done'] = done

    def converted_correctly(result, raw=raw, labels=labels):
        from mmseg_ddb.convert import id_to_train_id_lut
        lut = id_to_train_id_lut()
        assert len(outputs()) == 300
        for stem, raw_ids in ids.items():
            out = cv2.imread(osp.join(labels, f'{stem}_labelTrainIds.png'),
                             cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(out, lut[raw_ids], err_msg=stem)
        assert not [f for f in os.listdir(labels) if f.startswith('.tmp-')]
        import json
        with open(osp.join(raw, 'sample_class_stats.json')) as f:
            assert len(json.load(f)) == 300
        assert f'{300 - len(killed["done"])} labels, ' \
            f'{len(killed["done"])} already done' in result['out']

    add('convert_killed_then_rerun', [GTA_CONVERTER, raw, '--nproc', '1'],
        [], [raw], rc=0, before=kill_mid_run, after=converted_correctly,
        new_ok=['labels/*_labelTrainIds.png', '*.json'],
        # the stale temporary file of the killed writer is cleaned up
        changed_ok=['labels/.tmp-*'])

    assert list(cases) == CASES, set(cases) ^ set(CASES)
    # long cases first, so that they overlap with the short ones
    order = sorted(CASES, key=lambda n: cases[n].before is None)
    started = time.time()
    results = {}
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = {name: pool.submit(run_case, name, cases[name],
                                         tmp)
                       for name in order if not cases[name].skip}
            for name in order:
                if cases[name].skip:
                    results[name] = dict(skip=cases[name].skip)
                else:
                    results[name] = futures[name].result()
    finally:
        for dirpath, dirs, files in os.walk(tmp):  # let pytest clean up
            for name in dirs + files:
                path = osp.join(dirpath, name)
                if not osp.islink(path):
                    os.chmod(path, 0o755 if osp.isdir(path) else 0o644)
    print(f'\nbad-input matrix: {len(results)} cases in '
          f'{time.time() - started:.0f} s; slowest: ' + ', '.join(
              f'{n} {r["seconds"]:.0f} s' for n, r in sorted(
                  results.items(), key=lambda x: -x[1].get('seconds', 0))[:8]
              if 'seconds' in r))
    return {name: (cases[name], results[name]) for name in CASES}


def write_raw_gta(root: str, n: int) -> dict:
    """``n`` raw GTA5 pairs of 64x128 (palette labels with Cityscapes label
    ids, as GTA5 ships them); returns {stem: ids}."""
    from PIL import Image
    rng = np.random.default_rng(0)
    ids = {}
    for d in ('images', 'labels'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    base = rng.integers(0, 36, (64, 128)).astype(np.uint8)
    palette = list(rng.integers(0, 256, 768))
    for i in range(n):
        stem = f'{i:05d}'
        label = np.roll(base, i, axis=1)
        img = Image.frombytes('P', (128, 64), label.tobytes())
        img.putpalette(palette)
        img.save(osp.join(root, 'labels', f'{stem}.png'))
        cv2.imwrite(osp.join(root, 'images', f'{stem}.png'),
                    np.full((64, 128, 3), i % 256, np.uint8))
        ids[stem] = label
    return ids


@pytest.mark.parametrize('name', CASES)
def test_bad_input(matrix, name):
    case, result = matrix[name]
    if 'skip' in result:
        pytest.skip(result['skip'])
    assert 'failure' not in result, result['failure']
    out, err = result['out'], result['err']
    tail = f'\n--- stderr ---\n{err[-3000:]}\n--- stdout ---\n{out[-1500:]}'
    assert 'Traceback' not in out + err, tail
    assert result['rc'] == case.rc, tail
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    if case.rc == 0:
        assert not lines, tail
    else:
        assert len(lines) == 1, tail
        for word in case.words:
            assert word in lines[0], f'{word!r} not in: {lines[0]}'
    assert not result['problems'], result['problems']


def test_snapshot_catches_changed_vanished_and_half_written_files(tmp_path):
    """The check the matrix relies on: a rewrite with the same bytes (new
    mtime), a removal, an unexpected file and a ``.tmp-*`` file all count."""
    root = str(tmp_path)
    for name in ('same.bin', 'rewritten.bin', 'removed.bin'):
        (tmp_path / name).write_bytes(b'x')
    case = Case([], [], [root], new_ok=['logs/*', '*.log'])
    before = snapshot([root])
    time.sleep(0.01)
    (tmp_path / 'rewritten.bin').write_bytes(b'x')
    os.remove(tmp_path / 'removed.bin')
    os.makedirs(tmp_path / 'logs')
    (tmp_path / 'logs' / 'run.txt').write_text('ok')
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    (tmp_path / '.tmp-123-iter_3.log').write_bytes(b'half')
    problems = snapshot_problems(case, before, snapshot([root]))
    assert sorted(problems) == sorted([
        f'changed: {root}/rewritten.bin', f'vanished: {root}/removed.bin',
        f'new file: {root}/iter_3.pth',
        f'new file: {root}/.tmp-123-iter_3.log'])


def test_gpu_checks_count_the_visible_devices(monkeypatch):
    """The CUDA side of the GPU cases, on any machine: a machine with 2
    GPUs accepts GPU 0 and 1 and refuses GPU 2 in one clear line."""
    from mmseg_ddb.errors import ConfigError
    from mmseg_ddb.utils import check_device, check_gpu_id
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    for ok in ('cpu', 'cuda', 'cuda:1', None):
        check_device(ok)
    check_gpu_id(1)
    with pytest.raises(ConfigError, match=r'^--gpu-id 2: GPU 2 requested but '
                       r'only 2 CUDA GPU\(s\) are visible \(0\.\.1\)'):
        check_gpu_id(2)
    with pytest.raises(ConfigError, match=r'^--device cuda:5: GPU 5'):
        check_device('cuda:5')
    with pytest.raises(ConfigError, match='^--device gpu0: not a device'):
        check_device('gpu0')
