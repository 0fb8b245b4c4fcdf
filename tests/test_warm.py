"""Warm stage starts (``mmseg_ddb/pipeline/warm.py``): a stage forked from
the zygote behaves as the same command in a fresh interpreter (output, exit
status, and a training run's checkpoint to the last bit), and the launcher
forks only where that is safe. That killing the pipeline takes a warm stage
(and the zygote) down with it is checked by test_pipeline.py's kill test,
which runs warm on this CPU machine."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import SYNTHETIC_CONFIG, cfg_option_args
from test_tools import ENV, TIMEOUT, train_options

from mmseg_ddb.pipeline import warm
from mmseg_ddb.pipeline.launch import Launcher

TOOL = 'mmseg_ddb.tools.train'


@pytest.fixture(scope='module')
def zygote(tmp_path_factory):
    cwd = str(tmp_path_factory.mktemp('zygote'))
    z = warm.Zygote(sys.executable, dict(ENV, PYTHONUNBUFFERED='1'), cwd)
    yield z
    z.close()
    assert z.proc is None


def run_both(zygote, module, args):
    """``python -m module *args`` cold (a fresh interpreter) and warm:
    ``[(exit status, output), (exit status, output)]``."""
    cold = subprocess.run([sys.executable, '-m', module, *args],
                          cwd=zygote.cwd, env=zygote.env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT)
    proc = zygote.start(module, args, zygote.env, zygote.cwd)
    out = proc.stdout.read()
    return [(cold.returncode, cold.stdout), (proc.wait(), out)]


def test_a_warm_stage_prints_and_exits_as_a_cold_one(zygote):
    # a user error: status 2, one error line naming the file
    (cold_rc, cold_out), (warm_rc, warm_out) = run_both(
        zygote, 'mmseg_ddb.tools.test', ['missing.py', 'missing.pth'])
    assert cold_rc == warm_rc == 2
    assert cold_out == warm_out == 'error: config file missing.py not ' \
        'found\n'
    # argparse's usage and its status (prog is the tool's file name)
    (cold_rc, cold_out), (warm_rc, warm_out) = run_both(
        zygote, 'mmseg_ddb.tools.cal_prototype', ['--no-such-option'])
    assert cold_rc == warm_rc == 2
    assert cold_out == warm_out and 'cal_prototype.py: error:' in warm_out


def test_a_warm_training_run_equals_a_cold_one(zygote, tiny_data, tmp_path):
    """The same 8-iteration command (test_tools' ``trained``) cold and warm:
    identical weights, optimizer state and final validation."""
    outs = {}
    for mode in ('cold', 'warm'):
        work_dir = str(tmp_path / mode)
        args = [SYNTHETIC_CONFIG, '--work-dir', work_dir, '--final-metrics',
                osp.join(work_dir, 'final.json'), '--cfg-options',
                *cfg_option_args(train_options(tiny_data))]
        if mode == 'cold':
            res = subprocess.run([sys.executable, '-m', TOOL, *args],
                                 cwd=zygote.cwd, env=zygote.env, text=True,
                                 capture_output=True, timeout=TIMEOUT)
            code, log = res.returncode, res.stdout + res.stderr
        else:
            proc = zygote.start(TOOL, args, zygote.env, zygote.cwd)
            log = proc.stdout.read()
            code = proc.wait()
        assert code == 0, log[-3000:]
        outs[mode] = (torch.load(osp.join(work_dir, 'iter_8.pth'),
                                 map_location='cpu', weights_only=False),
                      open(osp.join(work_dir, 'final.json')).read())
    (cold, cold_final), (warm_, warm_final) = outs['cold'], outs['warm']
    assert cold['state_dict'].keys() == warm_['state_dict'].keys()
    for key, value in cold['state_dict'].items():
        assert torch.equal(value, warm_['state_dict'][key]), key
    for group_cold, group_warm in zip(cold['optimizer']['state'].values(),
                                      warm_['optimizer']['state'].values()):
        for key, value in group_cold.items():
            assert torch.equal(value, group_warm[key]), key
    assert cold_final.replace(str(tmp_path / 'cold'), '') == \
        warm_final.replace(str(tmp_path / 'warm'), '')


def test_warm_starts_only_where_safe(monkeypatch, tmp_path):
    """The launcher forks the stage tools on a CUDA-less machine unless
    switched off; torchrun, other modules and per-stage environments read at
    import time start cold."""
    started = []

    class Recorder:
        def start(self, module, args, env, cwd):
            started.append(module)
            return 'warm'

    monkeypatch.setattr(warm, 'zygote_for', lambda *a: Recorder())
    monkeypatch.setattr(subprocess, 'Popen', lambda cmd, **kw: 'cold')
    monkeypatch.delenv(warm.SWITCH, raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    py = sys.executable
    launch = Launcher(python=py)
    train = launch.train_cmd('c.py', 'w', {}, False, 1, 29500)
    env = dict(os.environ)
    assert launch._start(train, env, None) == 'warm'
    assert launch._start(launch.test_cmd('c.py', 'k.pth', 'm.json', 'w'),
                         env, dict(CUDA_VISIBLE_DEVICES='1')) == 'warm'
    assert launch._start(launch.prototype_cmd('c.py', 'k.pth', 1, 'p.pth'),
                         env, None) == 'warm'
    assert started == ['mmseg_ddb.tools.train', 'mmseg_ddb.tools.test',
                       'mmseg_ddb.tools.cal_prototype']
    assert launch._start(train, env, dict(OMP_NUM_THREADS='1')) == 'cold'
    assert launch._start(launch.train_cmd('c.py', 'w', {}, False, 2, 29500),
                         env, None) == 'cold'  # torchrun
    assert launch._start([py, '-m', 'mmseg_ddb.tools.infer'], env,
                         None) == 'cold'
    assert Launcher(python=py, warm_starts=False)._start(
        train, env, None) == 'cold'
    monkeypatch.setenv(warm.SWITCH, '0')
    assert launch._start(train, env, None) == 'cold'
    monkeypatch.delenv(warm.SWITCH)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert launch._start(train, env, None) == 'cold'
    assert len(started) == 3


def test_a_zygote_serves_one_interpreter_environment_and_folder():
    env = dict(A='1', CUDA_VISIBLE_DEVICES='0')
    z = warm.Zygote('/usr/bin/python3', env, '/w')
    assert z.serves('/usr/bin/python3', dict(env), '/w')
    assert z.serves('/usr/bin/python3', dict(A='1'), '/w')
    assert not z.serves('/usr/bin/python3', dict(A='2'), '/w')
    assert not z.serves('/usr/bin/python3', dict(env, B='1'), '/w')
    assert not z.serves('/usr/bin/python3.12', env, '/w')
    assert not z.serves('/usr/bin/python3', env, '/elsewhere')
    assert z.proc is None  # nothing started by asking
