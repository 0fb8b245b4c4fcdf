"""tools/slurm_train.sh and tools/slurm_test.sh with a fake ``srun`` on the
PATH that writes its arguments, one per line: the exact srun options (one
task per GPU with its GPU and cores, kill the step when one task fails) and
the tool command each script hands to srun."""
import os
import os.path as osp
import subprocess

import pytest
from conftest import REPO

FAKE_SRUN = '''#!/usr/bin/env bash
printf '%s\\n' "$@" > "$SRUN_ARGS_FILE"
printf 'PYTHONPATH=%s\\n' "$PYTHONPATH" >> "$SRUN_ARGS_FILE"
'''


def run_script(tmp_path, script, args, **env):
    """Run ``tools/<script>`` with the fake srun; its argument list."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(0o755)
    record = tmp_path / 'srun_args.txt'
    full_env = {k: v for k, v in os.environ.items()
                if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS')}
    full_env.update(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
                    SRUN_ARGS_FILE=str(record), PYTHON='python3', **env)
    res = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args],
                         env=full_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = record.read_text().splitlines()
    return lines[:-1], lines[-1]


def test_slurm_train_defaults_one_gpu(tmp_path):
    args, pythonpath = run_script(tmp_path, 'slurm_train.sh',
                                  ['gpu', 'ddb', 'configs/x.py', 'work_dirs/x'])
    assert args == ['-p', 'gpu', '--job-name=ddb', '--gres=gpu:1', '--ntasks=1',
                    '--ntasks-per-node=1', '--cpus-per-task=5',
                    '--kill-on-bad-exit=1', 'python3', '-u',
                    osp.join(REPO, 'tools', 'train.py'), 'configs/x.py',
                    '--launcher', 'slurm', '--work-dir', 'work_dirs/x']
    assert pythonpath.startswith(f'PYTHONPATH={REPO}:')


def test_slurm_train_many_nodes_and_extra_arguments(tmp_path):
    """16 GPUs on nodes of 8, srun options from SRUN_ARGS, no WORK_DIR (the
    next argument is an option and goes to train.py as it is)."""
    args, _ = run_script(
        tmp_path, 'slurm_train.sh',
        ['gpu', 'r1', 'configs/x.py', '--resume', '--cfg-options', 'a.b=1'],
        GPUS='16', CPUS_PER_TASK='8', SRUN_ARGS='--time=24:00:00 --qos=high')
    assert args == ['-p', 'gpu', '--job-name=r1', '--gres=gpu:8', '--ntasks=16',
                    '--ntasks-per-node=8', '--cpus-per-task=8',
                    '--kill-on-bad-exit=1', '--time=24:00:00', '--qos=high',
                    'python3', '-u', osp.join(REPO, 'tools', 'train.py'),
                    'configs/x.py', '--launcher', 'slurm', '--resume',
                    '--cfg-options', 'a.b=1']


def test_slurm_test_hands_the_checkpoint_and_options_to_test_py(tmp_path):
    args, _ = run_script(
        tmp_path, 'slurm_test.sh',
        ['gpu', 'eval', 'configs/x.py', 'ckpt.pth', '--eval', 'mIoU'],
        GPUS='2', GPUS_PER_NODE='1')
    assert args == ['-p', 'gpu', '--job-name=eval', '--gres=gpu:1', '--ntasks=2',
                    '--ntasks-per-node=1', '--cpus-per-task=5',
                    '--kill-on-bad-exit=1', 'python3', '-u',
                    osp.join(REPO, 'tools', 'test.py'), 'configs/x.py',
                    'ckpt.pth', '--launcher', 'slurm', '--eval', 'mIoU']


@pytest.mark.parametrize('script, args', [
    ('slurm_train.sh', ['gpu', 'ddb']),
    ('slurm_test.sh', ['gpu', 'ddb', 'configs/x.py']),
])
def test_slurm_scripts_print_their_usage_when_arguments_are_missing(script, args):
    res = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.startswith(f'usage: bash tools/{script} PARTITION JOB_NAME CONFIG')
