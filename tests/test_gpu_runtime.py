"""The GPU side of tests/test_gpu_readiness.py, on a real CUDA device (marked
``gpu``: skipped, with the reason, where there is none; ``tools/gpu_check.sh``
runs them): a resume reads its checkpoint onto the CPU and continues the run
(RNG states exactly, weights to the tolerance below), the optimizer's step
counters stay on the CPU, ``--deterministic`` runs, and ``--amp`` picks bf16
only where the GPU has it natively."""
import argparse
import os.path as osp
import sys

import pytest
import torch
from conftest import cfg_option_args
from test_tools import ok, run
from test_uda_tools import ST_CONFIG, TRAIN, uda_options

import mmseg_ddb  # noqa: F401

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU')]

#: weights of a resumed run against the uninterrupted one. The RNG states,
#: counters and data are identical; with --deterministic the only kernel
#: left without a deterministic CUDA version in these steps is the bilinear
#: upsampling backward (atomic adds), which reorders float sums.
RESUME_ATOL = 1e-5


def _train(work_dir, opts, tmp_path, *extra):
    return ok(run([sys.executable, TRAIN, ST_CONFIG, '--work-dir', work_dir,
                   '--deterministic', *extra, '--cfg-options',
                   *cfg_option_args(opts)], tmp_path))


@pytest.fixture(scope='module')
def straight(tiny_data, tmp_path_factory):
    """An uninterrupted 8-iteration ST run on CUDA, checkpoints at 4 and 8."""
    tmp = tmp_path_factory.mktemp('gpu_st')
    work_dir = str(tmp / 'work')
    _train(work_dir, uda_options(tiny_data), tmp)
    return work_dir


def test_resume_on_cuda_continues_the_run(straight, tiny_data, tmp_path):
    work_dir = str(tmp_path / 'resumed')
    res = _train(work_dir, uda_options(tiny_data), tmp_path, '--resume-from',
                 osp.join(straight, 'iter_4.pth'))
    assert 'iter: 4' in res.stdout
    a, b = (torch.load(osp.join(d, 'iter_8.pth'), weights_only=True)
            for d in (work_dir, straight))
    ra, rb = a['rng_state'], b['rng_state']
    assert ra['world_size'] == rb['world_size'] == 1
    for key in ('cpu', 'cuda'):
        assert torch.equal(ra['ranks'][0][key], rb['ranks'][0][key]), key
    sa, sb = a['state_dict'], b['state_dict']
    assert int(sa['_extra_state']) == int(sb['_extra_state']) == 8
    worst = max(float((sa[k].float() - sb[k].float()).abs().max())
                for k in sa if sa[k].is_floating_point())
    assert worst <= RESUME_ATOL, worst


def _args(**kw):
    base = dict(config=ST_CONFIG, cfg_options=None, launcher='none',
                work_dir=None, amp=False, channels_last=False,
                resume_from=None, resume=False, load_from=None,
                no_validate=True, seed=None, deterministic=True, gpu_id=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_resumed_step_counters_stay_on_the_cpu(straight, tiny_data,
                                               tmp_path):
    from mmseg_ddb.apis import build_runner, prepare_train_config
    opts = uda_options(tiny_data, **{'train_cfg.max_iters': 6})
    cfg = prepare_train_config(_args(
        cfg_options=opts, work_dir=str(tmp_path / 'w'), amp=True,
        resume_from=osp.join(straight, 'iter_4.pth')))
    runner = build_runner(cfg)
    runner.train()  # restores the RNG states read from the checkpoint
    assert next(runner.model.parameters()).is_cuda
    steps = [s['step'] for s in runner.optim_wrapper.optimizer.state.values()]
    assert steps and all(s.device.type == 'cpu' for s in steps)
    native = torch.cuda.get_device_capability()[0] >= 8
    expected = 'BF16OptimWrapper' if native else 'AmpOptimWrapper'
    assert type(runner.optim_wrapper).__name__ == expected
