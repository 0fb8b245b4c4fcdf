"""``--parallel-paths``: which stages run side by side and on which share
(fixed by the plan alone), the ``--threads`` their commands get, that the
lanes overlap in time, and that a failure ends its own lane only. The stage
runs are replaced by recorders: no training."""
import threading
import time

import pytest
import torch
from test_pipeline_report import pipeline_dict

import mmseg_ddb  # noqa: F401
from mmseg_ddb.errors import ConfigError
from mmseg_ddb.pipeline import PipelineError, PipelineRunner
from mmseg_ddb.pipeline.launch import Launcher
from mmseg_ddb.tools.args import apply_threads

#: the synthetic two-round plan, one stage per step
PLAN = ['init', 'reference', 'oracle', 'r1_st_cu', 'r1_st_ca', 'r1_proto_cu',
        'r1_proto_ca', 'r1_ckd', 'r2_st_cu', 'r2_st_ca', 'r2_proto_cu',
        'r2_proto_ca', 'r2_ckd']
#: its steps on a CPU with --parallel-paths: lanes side by side
CPU_STEPS = [[['init']],
             [['r1_st_cu', 'r1_proto_cu'], ['r1_st_ca', 'r1_proto_ca']],
             [['r1_ckd'], ['reference', 'oracle']],
             [['r2_st_cu', 'r2_proto_cu'], ['r2_st_ca', 'r2_proto_ca']],
             [['r2_ckd']]]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'pipeline.py'
    path.write_text(f'pipeline = {pipeline_dict()!r}\n')
    return str(path)


def names(steps):
    return [[[s.name for s in lane] for lane in step] for step in steps]


def cpu_threads(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: n)


def test_cpu_lanes_split_the_threads_and_keep_the_plan_order(
        config, tmp_path, monkeypatch, capsys):
    cpu_threads(monkeypatch, 2)
    runner = PipelineRunner(config, str(tmp_path / 'w'), parallel_paths=True)
    assert runner.lane_threads == 1
    assert names(runner.schedule(runner.stages)) == CPU_STEPS
    # every stage exactly once
    flat = [s for step in CPU_STEPS for lane in step for s in lane]
    assert sorted(flat) == sorted(PLAN)
    cpu_threads(monkeypatch, 5)
    assert PipelineRunner(config, str(tmp_path / 'w'),
                          parallel_paths=True).lane_threads == 2
    # one thread: nothing side by side, and the user is told
    cpu_threads(monkeypatch, 1)
    runner = PipelineRunner(config, str(tmp_path / 'w'), parallel_paths=True)
    assert runner.lane_threads is None
    assert names(runner.schedule(runner.stages)) == [[[s]] for s in PLAN]
    assert 'needs at least 2 CPU threads' in capsys.readouterr().out
    # without the switch: one stage at a time, in plan order
    cpu_threads(monkeypatch, 2)
    runner = PipelineRunner(config, str(tmp_path / 'w'))
    assert runner.lane_threads is None
    assert names(runner.schedule(runner.stages)) == [[[s]] for s in PLAN]


def test_gpu_lanes_pair_the_paths_only(config, tmp_path, monkeypatch):
    """On GPUs the lanes split the GPUs: each path with its prototype pass;
    the reference and oracle keep their place (beside the CKD they would
    take half of its GPUs, and with them half of its batch)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    runner = PipelineRunner(config, str(tmp_path / 'w'), gpus=2,
                            parallel_paths=True)
    assert runner.lane_threads is None
    assert names(runner.schedule(runner.stages)) == [
        [['init']], [['reference']], [['oracle']],
        [['r1_st_cu', 'r1_proto_cu'], ['r1_st_ca', 'r1_proto_ca']],
        [['r1_ckd']],
        [['r2_st_cu', 'r2_proto_cu'], ['r2_st_ca', 'r2_proto_ca']],
        [['r2_ckd']]]
    # one GPU: nothing to split
    runner = PipelineRunner(config, str(tmp_path / 'w'), gpus=1,
                            parallel_paths=True)
    assert names(runner.schedule(runner.stages)) == [[[s]] for s in PLAN]


def test_a_partial_selection_pairs_what_it_holds(config, tmp_path,
                                                 monkeypatch):
    cpu_threads(monkeypatch, 2)
    runner = PipelineRunner(config, str(tmp_path / 'w'), parallel_paths=True)
    pick = [runner.stage(n) for n in ('reference', 'r1_st_cu', 'r1_st_ca',
                                      'r1_proto_ca')]
    # no CKD: the reference keeps its place; only ST-ca's pass joins a lane
    assert names(runner.schedule(pick)) == [
        [['reference']], [['r1_st_cu'], ['r1_st_ca', 'r1_proto_ca']]]
    pick = [runner.stage(n) for n in ('r1_st_ca', 'r1_st_cu')]
    assert names(runner.schedule(pick)) == [[['r1_st_ca']], [['r1_st_cu']]]


def test_stage_commands_carry_threads():
    launch = Launcher(python='py')
    cmd = launch.train_cmd('c.py', 'w', {}, False, 1, 1, threads=1)
    assert cmd[cmd.index('--threads') + 1] == '1'
    assert '--threads' not in launch.train_cmd('c.py', 'w', {}, False, 1, 1)
    cmd = launch.test_cmd('c.py', 'k.pth', 'm.json', 'w', threads=3)
    assert cmd[-2:] == ['--threads', '3']
    assert '--threads' not in launch.test_cmd('c.py', 'k.pth', 'm.json', 'w')
    cmd = launch.prototype_cmd('c.py', 'k.pth', 4, 'p.pth', threads=2)
    assert cmd[-2:] == ['--threads', '2']
    assert '--threads' not in launch.prototype_cmd('c.py', 'k.pth', 4, 'p')


class Recorder:
    """Stands in for the stage processes: records each stage's share and
    time, writes its output file; ``fail`` names a stage that fails."""

    def __init__(self, runner, fail=None, seconds=0.15):
        self.runner, self.fail, self.seconds = runner, fail, seconds
        self.calls = {}
        self.lock = threading.Lock()

    def _record(self, stage, threads, env, key, filename):
        start = time.monotonic()
        time.sleep(self.seconds)
        if stage.name == self.fail:
            raise PipelineError(f'stage {stage.name} failed (exit 1)')
        folder = self.runner.stage_dir(stage)
        import os
        os.makedirs(folder, exist_ok=True)
        path = f'{folder}/{filename}'
        with open(path, 'w') as f:
            f.write(stage.name)
        with self.lock:
            self.calls[stage.name] = dict(threads=threads, env=env,
                                          start=start, end=time.monotonic())
        return dict(outputs={key: dict(path=path, sha256=None)},
                    metrics=None)

    def train(self, stage, options, resume, gpus, port, env, threads=None):
        return self._record(stage, threads, env, 'checkpoint', 'iter_1.pth')

    def prototypes(self, stage, inputs, env, threads=None):
        return self._record(stage, threads, env, 'prototypes',
                            'prototypes.pth')


def recorded_run(config, tmp_path, monkeypatch, fail=None):
    cpu_threads(monkeypatch, 2)
    runner = PipelineRunner(config, str(tmp_path / 'w'), parallel_paths=True)
    rec = Recorder(runner, fail)
    monkeypatch.setattr(runner, '_run_train', rec.train)
    monkeypatch.setattr(runner, '_run_prototypes', rec.prototypes)
    monkeypatch.setattr(runner, 'write_summary', lambda: None)
    return runner, rec


def overlap(a, b):
    return a['start'] < b['end'] and b['start'] < a['end']


def test_lanes_run_side_by_side_on_half_the_threads(config, tmp_path,
                                                    monkeypatch):
    runner, rec = recorded_run(config, tmp_path, monkeypatch)
    runner.run()
    calls = rec.calls
    assert sorted(calls) == sorted(PLAN)
    for name in PLAN:  # a lone stage gets torch's default, a lane stage 1
        alone = name in ('init', 'r2_ckd')
        assert calls[name]['threads'] == (None if alone else 1), name
        assert calls[name]['env'] is None, name  # warm starts stay possible
        assert runner.manifest.stages[name]['threads'] == \
            calls[name]['threads']
    for a, b in (('r1_st_cu', 'r1_st_ca'), ('r1_proto_cu', 'r1_proto_ca'),
                 ('r1_ckd', 'reference'),
                 ('r2_st_cu', 'r2_st_ca')):
        assert overlap(calls[a], calls[b]), (a, b)
    for first, then in (('r1_st_cu', 'r1_proto_cu'),
                        ('r1_st_ca', 'r1_proto_ca'), ('reference', 'oracle'),
                        ('r1_proto_cu', 'r1_ckd'), ('r1_proto_ca', 'r1_ckd'),
                        ('r1_ckd', 'r2_st_cu'), ('oracle', 'r2_st_ca'),
                        ('r2_proto_ca', 'r2_ckd')):
        assert calls[first]['end'] <= calls[then]['start'], (first, then)
    # a lane stage run alone (--only, an ablation) keeps its lane's threads,
    # so it gives the numbers it gives in the whole run
    for name, threads in (('r1_st_ca', 1), ('reference', 1),
                          ('r2_proto_cu', 1), ('init', None),
                          ('r2_ckd', None)):
        runner.run(only=name)
        assert calls[name]['threads'] == threads, name
    runner.run(subset=['reference', 'oracle'])  # no CKD beside them
    assert calls['oracle']['threads'] == 1


def test_a_failed_stage_ends_its_lane_only(config, tmp_path, monkeypatch):
    runner, rec = recorded_run(config, tmp_path, monkeypatch,
                               fail='r1_st_cu')
    with pytest.raises(PipelineError, match='r1_st_cu'):
        runner.run()
    # the other lane finished its work; nothing after the step started
    assert sorted(rec.calls) == ['init', 'r1_proto_ca', 'r1_st_ca']
    status = {n: r.get('status') for n, r in runner.manifest.stages.items()}
    assert status['r1_st_cu'] == 'failed'
    assert status['r1_st_ca'] == status['r1_proto_ca'] == 'done'
    assert 'r1_proto_cu' not in status and 'r1_ckd' not in status


def test_threads_option_sets_torch_threads_and_refuses_zero():
    before = torch.get_num_threads()
    try:
        apply_threads(1)
        assert torch.get_num_threads() == 1
        apply_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match='--threads 0'):
        apply_threads(0)


@pytest.mark.parametrize('tool,args', [
    ('train', ['c.py']), ('test', ['c.py', 'k.pth']),
    ('cal_prototype', ['c.py', 'k.pth'])])
def test_each_stage_tool_applies_threads_first(tool, args, capsys):
    """``--threads 0`` is refused before the config is read (the tool applies
    the option first thing)."""
    import importlib
    module = importlib.import_module(f'mmseg_ddb.tools.{tool}')
    with pytest.raises(SystemExit) as exc:
        module.main(args + ['--threads', '0'])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert '--threads 0' in err and 'c.py' not in err


def test_the_stage_cache_holds_default_thread_results_only(
        config, tmp_path, monkeypatch):
    """A shared stage run on a lane's threads is neither restored from nor
    stored in the stage cache (its floats are not the default run's)."""
    import mmseg_ddb.pipeline.runner as runner_module
    runner, rec = recorded_run(config, tmp_path, monkeypatch)
    used = []
    monkeypatch.setattr(runner_module, 'cache_root', lambda: str(tmp_path))
    monkeypatch.setattr(runner_module, 'lookup_cached',
                        lambda key: dict(folder='f', seconds=1.0))
    monkeypatch.setattr(runner_module, 'restore_cached',
                        lambda entry, folder: used.append('restore') or dict(
                            outputs={}, metrics=None))
    monkeypatch.setattr(runner_module, 'store_cached',
                        lambda *a: used.append('store'))
    init = runner.stage('init')
    assert init.shared
    assert runner.run_stage(init, threads=1) == 'fresh'
    assert used == [] and rec.calls['init']['threads'] == 1
    assert runner.run_stage(init, force=True) == 'cached'
    assert used == ['restore']
    monkeypatch.setattr(runner_module, 'lookup_cached', lambda key: None)
    assert runner.run_stage(init, force=True) == 'fresh'
    assert used == ['restore', 'store']
