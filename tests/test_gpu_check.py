"""tools/gpu_check.sh on a CPU machine, so that it cannot rot before a GPU
runs it: the command line, the dry-run plan, the refusal without a GPU, the
deadline and the planned kill of the step runner, the report assembled from
crafted part results, the wrapper's wheel install, the CPU reference it
compares with (the README's table) and the wheel list of gpu_wheels.sh."""
import json
import os
import os.path as osp
import re
import subprocess
import time

import pytest
import torch
from conftest import REPO

from mmseg_ddb.errors import ConfigError
from mmseg_ddb.gpu_check import plan as plan_mod
from mmseg_ddb.gpu_check import procs, results
from mmseg_ddb.gpu_check.report import assemble_report, format_table
from mmseg_ddb.tools import gpu_check


def test_parts_selection():
    assert plan_mod.select_parts(None, None) == list(plan_mod.PARTS)
    assert plan_mod.select_parts('ddp,tests', None) == ['tests', 'ddp']
    assert plan_mod.select_parts(None, 'benchmark') == ['tests', 'pipeline', 'ddp']
    for only, skip, match in (('tests,gpu', None, 'unknown part.*gpu'),
                              ('tests', 'ddp', 'exclude'),
                              (None, 'tests,pipeline,ddp,benchmark', 'no part')):
        with pytest.raises(ConfigError, match=match):
            plan_mod.select_parts(only, skip)


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    work = tmp_path / 'check'
    assert gpu_check.main(['--dry-run', '--work-dir', str(work), '--budget', '300']) == 0
    out = capsys.readouterr().out
    assert 'budget 300 s' in out and not work.exists()
    # phase 1: both precisions of the main job and the tests + DDP lane side
    # by side; phase 2: the benchmark alone
    phases = re.split(r'^phase \d+: ', out, flags=re.M)[1:]
    assert len(phases) == 2 and phases[0].startswith('3 lane(s), side by side')
    first = phases[0]
    fp32 = re.search(r'\$ (.*pipeline/fp32)\n', first).group(1)
    amp = re.search(r'\$ (.*--amp)\n', first).group(1)
    for cmd in (fp32, amp):
        assert 'tools/ddb_pipeline.py configs/synthetic/ddb_synthetic.py --seeds 0' in cmd
    assert '--amp' not in fp32
    assert f'-m pytest -m gpu -q -rfE -p no:cacheprovider --junitxml={work}/tests/junit.xml tests' \
        in first
    kills = re.findall(r'lane 3: (ddp_\w+)  \[SIGKILL once iter_20\.pth is written\]', first)
    assert kills == ['ddp_st', 'ddp_ckd']
    assert first.count('bash tools/dist_train.sh') == 4 and first.count('--resume') == 2
    assert 'max_iters=60' in first and 'checkpoint.interval=20' in first
    assert f'uda.teachers.1.checkpoint={work}/ddp/st/iter_60.pth' in first
    assert 'bash tools/benchmark_gpu.sh' in phases[1] and 'benchmark' not in first
    assert out.rstrip().endswith(f'report: {work}/report.json')
    # --only keeps the order and the phases of what is left
    gpu_check.main(['--dry-run', '--only', 'benchmark,tests'])
    out = capsys.readouterr().out
    assert re.findall(r'lane \d: (\w+)', out) == ['tests', 'benchmark']


@pytest.mark.parametrize('argv, message', [
    ([], 'error: no CUDA GPU is visible'),
    (['--budget', '0'], 'error: --budget 0: must be a positive'),
    (['--skip', 'pipelines'], 'error: unknown part(s) pipelines'),
])
def test_refusals_are_one_line_and_exit_2(argv, message, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(gpu_check, 'visible_gpus', lambda: 0)
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(argv + ['--work-dir', str(tmp_path / 'w')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count('\n') == 1, err
    assert not (tmp_path / 'w').exists()


def fast_deadline(budget_s):
    """A deadline whose clock runs 20x faster than the wall clock."""
    return procs.Deadline(budget_s, clock=lambda: 20 * time.monotonic())


def shell_step(tmp_path, name, script, part='p', **kwargs):
    return plan_mod.Step(name, part, ['bash', '-c', script], str(tmp_path / f'{name}.log'),
                         **kwargs)


def test_steps_stop_at_the_deadline_and_after_a_planned_kill(tmp_path):
    """A step still running when the budget is spent is stopped (timeout)
    and the lane's next step of its part is not run; a step planned to be
    killed is SIGKILLed, its child processes too, once its checkpoint
    pointer names the checkpoint; one that ends first has failed."""
    ckpt_dir = tmp_path / 'run'
    ckpt_dir.mkdir()
    child = tmp_path / 'child.pid'
    writes = (f'sleep 60 & echo $! > {child}; sleep 0.2; '
              f'echo {ckpt_dir}/iter_2.pth > {ckpt_dir}/last_checkpoint; wait')
    plan = [[[shell_step(tmp_path, 'slow', 'echo started; sleep 60'),
              shell_step(tmp_path, 'after', 'true')],
             [shell_step(tmp_path, 'early', 'exit 0', part='r', kill_at='iter_2.pth',
                         work_dir=str(tmp_path)),
              shell_step(tmp_path, 'killed', writes, part='q', kill_at='iter_2.pth',
                         work_dir=str(ckpt_dir))]],
            [[shell_step(tmp_path, 'later', 'true')]]]
    start = time.monotonic()
    res = procs.run_plan(plan, fast_deadline(25))
    assert time.monotonic() - start < 3
    assert res['slow']['status'] == 'timeout' and res['slow']['returncode'] != 0
    assert res['after'] == procs.step_result('not run', reason='slow did not succeed',
                                             log=str(tmp_path / 'after.log'))
    assert res['killed']['status'] == 'killed' and res['killed']['returncode'] == -9
    pid = int(child.read_text())
    assert not osp.exists(f'/proc/{pid}') or open(f'/proc/{pid}/stat').read().split()[2] == 'Z'
    assert res['early']['status'] == 'failed' and 'before iter_2.pth' in res['early']['reason']
    assert res['later']['status'] == 'not run'
    assert res['later']['reason'] == 'the time budget was spent'
    assert (tmp_path / 'slow.log').read_text().startswith("$ bash -c 'echo started")


# -- the report from crafted part results -----------------------------------------
def crafted_run(tmp_path):
    """A work dir and step results as a run would leave them: tests with a
    failure, the fp32 main job complete (one stage far from the CPU), the
    amp one cut by the budget after three stages, both DDP runs killed and
    resumed to the end, two benchmark results."""
    work = tmp_path / 'check'
    ok = dict(status='ok', seconds=10.0, returncode=0, reason='', log=None)
    steps = {}

    def step(name, log_text='', **fields):
        log = work / 'logs' / f'{name}.log'
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(log_text)
        steps[name] = dict(ok, log=str(log), **fields)

    (work / 'tests').mkdir(parents=True)
    (work / 'tests' / 'junit.xml').write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_gpu" name="test_a"/>'
        '<testcase classname="tests.test_gpu" name="test_b"/>'
        '<testcase classname="tests.test_gpu" name="test_c"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_x" name="test_d"><skipped/></testcase>'
        '</testsuite></testsuites>')
    step('tests', ''.join(f'line {i}\n' for i in range(100)), status='failed', returncode=1,
         reason='exit 1')
    ref = results.load_reference()
    for run, done, shift in (('fp32', 8, 0.5), ('amp', 3, -0.2)):
        stages = {}
        for i, r in enumerate(ref['stages']):
            miou = r['mIoU_mean'] + shift + (5.0 if run == 'fp32' and i == 4 else 0.0)
            stages[r['stage']] = (dict(status='done', metrics=dict(mIoU=miou), seconds=30.0)
                                  if i < done else dict(status='running'))
        manifest = work / 'pipeline' / run / 'seed0' / 'manifest.json'
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps(dict(stages=stages)))
        step(f'pipeline_{run}', **({} if done == 8 else dict(
            status='timeout', reason='stopped: the time budget was spent')))
    for name in ('st', 'ckd'):
        run_dir = work / 'ddp' / name
        run_dir.mkdir(parents=True)
        torch.save(dict(meta=dict(iter=60)), str(run_dir / 'iter_60.pth'))
        (run_dir / 'last_checkpoint').write_text(str(run_dir / 'iter_60.pth'))
        step(f'ddp_{name}', status='killed', returncode=-9, reason='SIGKILL after iter_20.pth')
        step(f'ddp_{name}_resume', 'Distributed training: True\nGPU number: 2\n'
             'resumed epoch: 0, iter: 20\nIter(val) [13/13]    mIoU: 9.6400  mAcc: 1\n')
    step('ddp_prototypes')
    bench = work / 'benchmark'
    bench.mkdir()
    for name, st_ms in (('fp32', 300.0), ('bf16', 150.0)):
        (bench / f'{name}.json').write_text(json.dumps(dict(st_ms=st_ms, supervised_ms=100.0,
                                                            unrelated=1)))
    step('benchmark', 'noise\nfp32                 sup 100.0 ms  ST 300.0 ms\n'
         'NVIDIA H200, config: r1.py, batch 4, crop 512, torch 2.11\n')
    return str(work), steps


def test_report_from_crafted_part_results(tmp_path):
    work, steps = crafted_run(tmp_path)
    env = dict(gpu='NVIDIA H200', gpus=1, capability=[9, 0], torch='2.11.0+cu130')
    selected = ['tests', 'pipeline', 'ddp', 'benchmark']
    parts = gpu_check.collect(selected, steps, work, gpus=1)
    report = assemble_report(env, parts, selected, 480, 470.2, 0.0, out='r.json',
                             steps=results.step_records(steps))
    json.dumps(report)  # the report is plain JSON
    assert report['status'] == 'failed'
    # a failed step keeps the end of its log; a good one does not
    assert report['steps']['tests']['tail'] == [f'line {i}' for i in range(60, 100)]
    assert 'tail' not in report['steps']['ddp_st'] and 'tail' not in report['steps']['benchmark']
    tests = report['parts']['tests']
    assert (tests['status'], tests['passed'], tests['failed'], tests['skipped']) == \
        ('failed', 2, 1, 1)
    assert tests['failures'] == ['tests.test_gpu::test_c']
    pipe = report['parts']['pipeline']
    assert pipe['status'] == 'failed'  # a stage far from the CPU
    assert pipe['far_from_cpu'] == ['r1_ckd fp32 27.05']
    assert [pipe['runs'][r]['stages_done'] for r in ('fp32', 'amp')] == [8, 3]
    assert pipe['runs']['amp']['status'] == 'timeout'
    row = pipe['rows'][1]  # the oracle: 34.27 ± 0.63 on the CPU
    assert (row['fp32'], row['fp32_delta'], row['fp32_close']) == (34.77, 0.5, True)
    assert row['allowed'] == pytest.approx(1.89)
    assert pipe['rows'][5]['amp'] is None and pipe['rows'][5]['amp_close'] is None
    ddp = report['parts']['ddp']
    assert ddp['status'] == 'passed' and ddp['expected_backend'].startswith('gloo')
    assert ddp['runs']['st'] == dict(
        killed=True, kill_reason='SIGKILL after iter_20.pth', resumed_from=20, final_iter=60,
        distributed=True, world_size=2, evaluated=True, seconds=20.0, ok=True)
    bench = report['parts']['benchmark']
    assert bench['runs'] == dict(bf16=dict(st_ms=150.0, supervised_ms=100.0),
                                 fp32=dict(st_ms=300.0, supervised_ms=100.0))
    assert bench['summary_lines'] == ['fp32                 sup 100.0 ms  ST 300.0 ms',
                                      'NVIDIA H200, config: r1.py, batch 4, crop 512, '
                                      'torch 2.11']
    table = format_table(report).splitlines()
    assert table[0] == ('GPU check on NVIDIA H200 (compute capability 9.0, 1 GPU(s)), '
                        'torch 2.11.0+cu130: FAILED (7 min 50 s of a 8 min 00 s budget)')
    line = {ln.split()[0]: ln for ln in table[2:6]}
    assert line['tests'].split()[1] == 'failed' and '2 passed, 1 failed' in line['tests']
    assert 'fp32 8/8 stages' in line['pipeline'] and 'amp 3/8' in line['pipeline']
    assert 'outside the CPU tolerance: r1_ckd fp32 27.05' in line['pipeline']
    assert 'st: killed at 20, resumed from 20, reached 60' in line['ddp']
    assert 'bf16 150 ms (2.00x)' in line['benchmark']
    stage = next(ln for ln in table if ln.startswith('R1 CKD'))
    assert stage.split()[-5:] == ['0.27', '27.05', '+5.50', '!', '-']  # amp: not reached
    assert table[-1] == 'report: r.json'


def test_an_all_skipped_gpu_test_run_is_not_a_pass(tmp_path):
    junit = tmp_path / 'junit.xml'
    junit.write_text('<testsuite><testcase classname="t" name="a"><skipped/></testcase>'
                     '</testsuite>')
    ok = dict(status='ok', seconds=1.0, returncode=0, reason='', log=None)
    res = results.tests_result(dict(tests=ok), str(junit))
    assert res['status'] == 'failed' and 'no gpu test passed' in res['reason']


# -- the wrapper script, the reference numbers, the wheel list ---------------------
FAKE_PYTHON = '''#!/usr/bin/env bash
echo "PYTHONPATH=$PYTHONPATH ARGS=$*" >> "$CALLS"
'''


def test_wrapper_installs_the_wheels_then_runs_the_check(tmp_path):
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    for name in ('b-1-py3-none-any.whl', 'a-2-py3-none-any.whl'):
        (wheels / name).write_text('')
    calls, site = tmp_path / 'calls.txt', tmp_path / 'site'
    env = dict(os.environ, PYTHON=str(fake), CALLS=str(calls), GPU_CHECK_SITE=str(site),
               PYTHONPATH='')
    script = osp.join(REPO, 'tools', 'gpu_check.sh')
    res = subprocess.run(['bash', script, '--wheels', str(wheels), '--dry-run', '--only', 'ddp'],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == 'PYTHONPATH= ARGS=-m pip --version'
    assert lines[1] == (f'PYTHONPATH= ARGS=-m pip install -q --no-index --no-deps --no-compile '
                        f'--target {site} {wheels}/a-2-py3-none-any.whl '
                        f'{wheels}/b-1-py3-none-any.whl')
    assert lines[-1] == (f'PYTHONPATH={site}:{REPO} ARGS=-m mmseg_ddb.tools.gpu_check '
                         '--dry-run --only ddp')
    assert 'installed 2 wheels' in res.stdout
    # no wheel in the folder: one line, exit 2, nothing run
    calls.unlink()
    res = subprocess.run(['bash', script, '--wheels', str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith(f'error: --wheels {tmp_path}: no .whl')
    assert not calls.exists()


def test_the_cpu_reference_is_the_readmes_table():
    """docs/synthetic_cpu_reference.json holds the README's seed-0, mean and
    std of every stage of the main job."""
    ref = results.load_reference()
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    for stage in ref['stages']:
        label = re.escape(stage['readme_label']).replace(r'R2\ CKD', r'\*\*R2 CKD\*\*')
        row = re.search(rf'^\| {label} \| \**([\d.]+) ± ([\d.]+)\** \| ([\d.]+) / ', readme,
                        flags=re.M)
        assert row, stage['readme_label']
        assert [float(v) for v in row.groups()] == [
            stage['mIoU_mean'], stage['mIoU_std'], stage['mIoU_seed0']]
    assert [s['stage'] for s in ref['stages']] == [
        'reference', 'oracle', 'r1_st_cu', 'r1_st_ca', 'r1_ckd', 'r2_st_cu', 'r2_st_ca', 'r2_ckd']
    assert '**18 min 42 s** wall' in readme and ref['main_job_seconds'] == 18 * 60 + 42


def test_gpu_wheels_pin_what_pyproject_pins_and_cover_its_dependencies():
    """Every dependency of pyproject.toml (and the test extra's hypothesis)
    is downloaded by tools/gpu_wheels.sh or listed as on the GPU machine;
    the OpenMMLab pins are pyproject's."""
    import tomllib
    with open(osp.join(REPO, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)['project']
    with open(osp.join(REPO, 'tools', 'gpu_wheels.sh')) as f:
        script = f.read()
    pins = dict(re.findall(r'^    ([\w-]+)==([\w.]+)$', script, flags=re.M))
    present = re.search(r'^PRESENT="([^"]+)"', script, flags=re.M).group(1).split()
    for dep in project['dependencies'] + ['hypothesis']:
        name, _, version = dep.partition('==')
        name = re.split(r'[<>=]', name)[0]
        assert name in pins or name in present, name
        if version:
            assert pins[name] == version, name
    assert 'typing' not in pins  # would shadow the standard library
