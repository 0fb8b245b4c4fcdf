"""Stage 1 and Stage 2 through the real command-line tools on tiny data:
a SIGKILLed and resumed ST or CKD run ends bit-identical to an uninterrupted
one (weights, EMA, iteration counter, prototypes, optimizer); ST runs with
2 gloo processes; prototypes come from cal_prototype.py."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import warm_tools
from conftest import REPO, cfg_option_args, loader_options
from test_tools import ENV, TIMEOUT, free_port, kill_after_checkpoint, ok, run

import mmseg_ddb  # noqa: F401

TRAIN = osp.join(REPO, 'tools', 'train.py')
PROTO = osp.join(REPO, 'tools', 'cal_prototypes', 'cal_prototype.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
ST_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'st_ca_synthetic.py')
CKD_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'ckd_synthetic.py')


def uda_options(root, **extra):
    """The synthetic UDA configs on the tiny data: source = GTA layout,
    target = the Cityscapes-layout images, no workers, batch 2, 8
    iterations, a checkpoint every 4, random init (no generic pretraining)."""
    opts = {
        'model.backbone.init_cfg': None,
        'train_dataloader.dataset.source.data_root': osp.join(root, 'gta'),
        'train_dataloader.dataset.source.synthetic': None,
        'train_dataloader.dataset.target.data_root': osp.join(root, 'cs'),
        'train_dataloader.dataset.target.data_prefix.img_path':
            'leftImg8bit/val',
        # labels for the synthetic configs' pseudo-label monitoring
        'train_dataloader.dataset.target.data_prefix.seg_map_path':
            'gtFine/val',
        'train_dataloader.dataset.target.synthetic': None,
        'train_cfg.max_iters': 8,
        'train_cfg.val_interval': 8,
        'default_hooks.checkpoint.interval': 4,
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'param_scheduler.0.start_factor': 1.0,
        **loader_options(root),
    }
    opts.update(extra)
    return opts


def cmd(config, work_dir, opts, *extra):
    return [sys.executable, TRAIN, config, '--work-dir', work_dir, *extra,
            '--cfg-options', *cfg_option_args(opts)]


def killed_then_resumed(config, opts, tmp_path):
    """Kill a run with SIGKILL right after its iteration-4 checkpoint, resume
    it, and return the final checkpoint."""
    work_dir = str(tmp_path / 'killed')
    kill_after_checkpoint(cmd(config, work_dir, opts), work_dir, tmp_path)
    res = ok(run(cmd(config, work_dir, opts, '--resume'), tmp_path))
    assert 'iter: 4' in res.stdout
    return torch.load(osp.join(work_dir, 'iter_8.pth'), weights_only=True)


def assert_same_run(a, b):
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    sa, sb = a['state_dict'], b['state_dict']
    assert set(sa) == set(sb)
    differ = [k for k in sa if str(sa[k]) != str(sb[k]) or (
        torch.is_tensor(sa[k]) and not torch.equal(sa[k], sb[k]))]
    assert not differ, f'{len(differ)} entries differ, e.g. {differ[:3]}'
    for p, state in a['optimizer']['state'].items():
        for k, v in state.items():
            assert torch.equal(v, b['optimizer']['state'][p][k]), (p, k)


@pytest.fixture(scope='module')
def st_run(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('st')
    work_dir = str(tmp / 'work')
    ok(run(cmd(ST_CONFIG, work_dir, uda_options(tiny_data)), tmp))
    return torch.load(osp.join(work_dir, 'iter_8.pth'), weights_only=True), \
        osp.join(work_dir, 'iter_8.pth')


def test_st_checkpoint_layout(st_run):
    ckpt, _ = st_run
    sd = ckpt['state_dict']
    assert any(k.startswith('model.backbone.') for k in sd)
    assert any(k.startswith('ema_model.backbone.') for k in sd)
    assert int(sd['_extra_state']) == 8  # the iteration counter


def test_st_killed_and_resumed_equals_uninterrupted(st_run, tiny_data,
                                                    tmp_path):
    resumed = killed_then_resumed(ST_CONFIG, uda_options(tiny_data),
                                  tmp_path)
    assert_same_run(resumed, st_run[0])


def test_st_with_two_gloo_processes(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    opts = uda_options(tiny_data, **{'train_cfg.max_iters': 4,
                                     'train_cfg.val_interval': 4})
    res = subprocess.run(
        ['bash', DIST_TRAIN, ST_CONFIG, '2', '--work-dir', work_dir,
         '--cfg-options', *cfg_option_args(opts)],
        cwd=str(tmp_path), env=dict(ENV, PORT=str(free_port())),
        capture_output=True, text=True, timeout=TIMEOUT)
    ok(res)
    assert 'Distributed training: True' in res.stdout
    ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)
    assert int(ckpt['state_dict']['_extra_state']) == 4
    # rank 0 wrote both ranks' RNG states, and they differ: each rank is
    # seeded seed + rank, so the ranks cut other boxes and pick other classes
    rng = ckpt['rng_state']
    assert rng['world_size'] == 2 and len(rng['ranks']) == 2
    assert not torch.equal(rng['ranks'][0]['cpu'], rng['ranks'][1]['cpu'])


@pytest.fixture(scope='module')
def fp32_prototypes(st_run, tiny_data, tmp_path_factory):
    """Prototypes of the ST run, computed by the real tool: the file."""
    tmp = tmp_path_factory.mktemp('proto')
    out = str(tmp / 'protos.pth')
    opts = uda_options(tiny_data)
    ok(run([sys.executable, PROTO, ST_CONFIG, st_run[1], '--epochs', '1',
            '--out', out, '--no-progress', '--cfg-options',
            *cfg_option_args({k: v for k, v in opts.items()
                              if k.startswith('train_dataloader.dataset')})],
           tmp))
    saved = torch.load(out, weights_only=True)
    assert saved['prototypes'].shape == (19, 64)
    assert saved['meta']['epochs'] == 1 and saved['meta']['amp'] is False
    assert osp.isfile(str(tmp / 'protos.log'))
    return out


@pytest.fixture(scope='module')
def ckd_inputs(st_run, tiny_data, fp32_prototypes):
    """CKD options: both teachers are the ST run, with its prototypes."""
    return uda_options(tiny_data, **{
        'uda.teachers.0.checkpoint': st_run[1],
        'uda.teachers.0.prototypes': fp32_prototypes,
        'uda.teachers.1.checkpoint': st_run[1],
        'uda.teachers.1.prototypes': fp32_prototypes})


def test_prototypes_in_bf16_are_close_to_fp32(st_run, tiny_data,
                                              fp32_prototypes, tmp_path):
    """--amp (bf16 autocast, here on the CPU): the same classes get
    prototypes, each within a few percent of the fp32 one."""
    out = str(tmp_path / 'protos_amp.pth')
    opts = uda_options(tiny_data)
    ok(run([sys.executable, PROTO, ST_CONFIG, st_run[1], '--epochs', '1',
            '--out', out, '--no-progress', '--amp', '--cfg-options',
            *cfg_option_args({k: v for k, v in opts.items()
                              if k.startswith('train_dataloader.dataset')})],
           tmp_path))
    amp = torch.load(out, weights_only=True)
    fp32 = torch.load(fp32_prototypes, weights_only=True)
    assert amp['meta']['amp'] is True
    # the estimator the tool used: the original's running-mean cap and
    # minimum pixel count (METHOD.md 2.4)
    assert (amp['meta']['cap'], amp['meta']['min_pixels']) == (3000, 10)
    a, b = amp['prototypes'], fp32['prototypes']
    present = b.norm(dim=1) > 0
    assert present.any()
    assert torch.equal(a.norm(dim=1) > 0, present)
    rel = (a - b)[present].norm(dim=1) / b[present].norm(dim=1)
    assert rel.max() < 0.05, rel


def test_st_and_ckd_train_in_bf16(ckd_inputs, tiny_data, tmp_path):
    """``tools/train.py --amp`` (bf16 autocast, here on the CPU) for both
    stages: the bf16 optimizer wrapper in the log, a finite loss at the
    last iteration, finite fp32 weights in the checkpoint."""
    procs = {}
    for name, config, opts in (('st', ST_CONFIG, uda_options(tiny_data)),
                               ('ckd', CKD_CONFIG, ckd_inputs)):
        work_dir = str(tmp_path / name)
        procs[name] = (work_dir, warm_tools.shared(ENV).start(
            cmd(config, work_dir, dict(opts, **{'train_cfg.max_iters': 4,
                                                'train_cfg.val_interval': 4}),
                '--amp'), str(tmp_path)))
    for name, (work_dir, proc) in procs.items():
        out = ''.join(proc.communicate(TIMEOUT))
        assert proc.returncode == 0, out[-3000:]
        assert 'BF16OptimWrapper' in out
        assert 'nan' not in out.split('Iter(train) [4/4]')[1].split(
            '\n')[0].lower(), out[-2000:]
        ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'),
                          weights_only=True)
        sd = ckpt['state_dict']
        student = 'model.' if name == 'st' else 'stu_model.'
        weights = [v for k, v in sd.items() if k.startswith(student)
                   and v.is_floating_point()]
        assert weights and all(w.dtype == torch.float32 for w in weights)
        assert all(torch.isfinite(w).all() for w in weights)


def test_ckd_killed_and_resumed_equals_uninterrupted(ckd_inputs, tmp_path):
    work_dir = str(tmp_path / 'straight')
    ok(run(cmd(CKD_CONFIG, work_dir, ckd_inputs), tmp_path))
    straight = torch.load(osp.join(work_dir, 'iter_8.pth'), weights_only=True)
    sd = straight['state_dict']
    assert any(k.startswith('stu_model.') for k in sd)
    assert any(k.startswith('teachers.1.') for k in sd)
    resumed = killed_then_resumed(CKD_CONFIG, ckd_inputs, tmp_path)
    assert_same_run(resumed, straight)
