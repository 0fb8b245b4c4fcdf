"""Launching a pipeline stage: the command lines of the per-stage tools
(:mod:`mmseg_ddb.tools.train`, ``.test`` and ``.cal_prototype``, run as
modules, so the pipeline also runs from an installed package), running one as
a child process that dies with the pipeline, and splitting the GPUs between
two stages that run side by side."""
import os
import os.path as osp
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ..errors import DDBError
from ..utils.paths import REPO_ROOT
from ..utils.processes import die_with_parent
from . import warm

_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')


class PipelineError(DDBError):
    """A stage failed; the message names it and its log."""


def split_devices(gpus: int, parts: int = 2) -> List[str]:
    """``CUDA_VISIBLE_DEVICES`` values giving each of ``parts`` stages run
    side by side ``gpus // parts`` of the visible (or the first ``gpus``)
    devices."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    devices = visible.split(',') if visible else [str(i)
                                                  for i in range(gpus)]
    share = gpus // parts
    return [','.join(devices[k * share:(k + 1) * share])
            for k in range(parts)]


def _threads(threads: Optional[int]) -> List[str]:
    """A stage tool's ``--threads`` option (none for None)."""
    return [] if threads is None else ['--threads', str(threads)]


#: CPU cores per task of a training stage run through srun, unless the
#: ``CPUS_PER_TASK`` environment variable says otherwise (as for
#: tools/slurm_train.sh): the data workers of one GPU
DEFAULT_CPUS_PER_TASK = 5


def cpus_per_task_from_env() -> int:
    """``CPUS_PER_TASK`` from the environment, else
    :data:`DEFAULT_CPUS_PER_TASK`."""
    value = os.environ.get('CPUS_PER_TASK', '')
    if not value:
        return DEFAULT_CPUS_PER_TASK
    if not value.isdigit() or int(value) < 1:
        raise PipelineError(f'CPUS_PER_TASK={value!r}: expected a positive '
                            'integer (CPU cores per srun task)')
    return int(value)


@dataclass
class Launcher:
    """How the stages are started: the command-line options every stage gets.

    Attributes:
        python: Interpreter for the stages.
        launcher: ``'none'`` / ``'pytorch'`` (torchrun) or ``'slurm'``
            (each training stage through ``srun``).
        amp: ``--amp`` for every tool.
        channels_last: ``--channels-last`` for train.py and test.py.
        seed: ``--seed`` for train.py (None: none passed).
        verbose: Stream the stages' logs to the console.
        cpus_per_task: srun's ``--cpus-per-task`` of a training stage
            (``launcher='slurm'``); None: ``CPUS_PER_TASK`` from the
            environment, else 5.
        warm_starts: Fork one-process stages from a process that imported
            the tools once (:mod:`.warm`; CPU-only machines, unless
            ``DDB_WARM_STARTS=0``).
    """
    python: str = sys.executable
    launcher: str = 'none'
    amp: bool = False
    channels_last: bool = False
    seed: Optional[int] = None
    verbose: bool = False
    cpus_per_task: Optional[int] = None
    warm_starts: bool = True

    def train_cmd(self, config: str, work_dir: str, options: Dict[str, str],
                  resume: bool, gpus: int, port: int,
                  extra: Sequence[str] = (),
                  threads: Optional[int] = None) -> List[str]:
        """The ``tools/train.py`` command of a training stage (``extra``:
        more train.py options; ``threads``: its ``--threads``, None: torch's
        default)."""
        module = ['-m', 'mmseg_ddb.tools.train']
        args = [config, '--work-dir', work_dir, *extra, *_threads(threads)]
        if resume:
            args.append('--resume')
        if self.amp:
            args.append('--amp')
        if self.channels_last:
            args.append('--channels-last')
        if self.seed is not None:
            args += ['--seed', str(self.seed)]
        if options:
            args += ['--cfg-options'] + [f'{k}={v}'
                                         for k, v in options.items()]
        if self.launcher == 'slurm':
            # one task per GPU, at most 8 per node, each with its GPU and
            # its data workers' cores; one failed task ends the step
            per_node = min(max(gpus, 1), 8)
            cpus = self.cpus_per_task or cpus_per_task_from_env()
            return ['srun', f'--ntasks={max(gpus, 1)}',
                    f'--ntasks-per-node={per_node}', f'--gres=gpu:{per_node}',
                    f'--cpus-per-task={cpus}',
                    '--kill-on-bad-exit=1',
                    self.python, '-u', *module] + args + ['--launcher',
                                                         'slurm']
        if gpus > 1 or self.launcher == 'pytorch':
            return [self.python, '-m', 'torch.distributed.run',
                    f'--nproc_per_node={max(gpus, 1)}',
                    f'--master_port={port}', *module] + args + [
                        '--launcher', 'pytorch']
        return [self.python, *module] + args

    def test_cmd(self, config: str, checkpoint: str, metrics_out: str,
                 work_dir: str, threads: Optional[int] = None) -> List[str]:
        """The ``tools/test.py`` command evaluating a trained stage."""
        return [self.python, '-m', 'mmseg_ddb.tools.test', config,
                checkpoint, '--metrics-out', metrics_out, '--work-dir',
                work_dir] + (['--amp'] if self.amp else []) + (
                    ['--channels-last'] if self.channels_last else []) + \
            _threads(threads)

    def prototype_cmd(self, config: str, checkpoint: str, epochs: int,
                      out: str, threads: Optional[int] = None) -> List[str]:
        """The ``cal_prototype.py`` command of a prototype stage (it has no
        seed option)."""
        return [self.python, '-m', 'mmseg_ddb.tools.cal_prototype', config,
                checkpoint, '--epochs', str(epochs), '--out', out,
                '--no-progress'] + (['--amp'] if self.amp else []) + \
            _threads(threads)

    def _start(self, cmd: List[str], child_env: Dict[str, str],
               extra_env: Optional[dict]):
        """``cmd`` started as a child process with its stdout and stderr on
        one pipe: forked warm from the zygote where :mod:`.warm` allows,
        else a fresh interpreter."""
        cwd = os.getcwd()
        if (self.warm_starts and len(cmd) > 2 and cmd[0] == self.python
                and cmd[1] == '-m' and cmd[2] in warm.WARM_MODULES
                and set(extra_env or ()) <= warm.LAZY_ENV and warm.enabled()):
            try:
                return warm.zygote_for(self.python, child_env, cwd).start(
                    cmd[2], cmd[3:], child_env, cwd)
            except (OSError, RuntimeError) as e:
                print(f'warning: {e}; starting {cmd[2]} cold',
                      file=sys.stderr)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                env=child_env, preexec_fn=die_with_parent)

    def stream(self, cmd: List[str], log_path: str, desc: str,
               env: Optional[dict] = None) -> None:
        """Run ``cmd``, teeing its output to ``log_path`` and a progress bar
        (or the console when verbose).

        Raises:
            PipelineError: The command failed; names ``desc``, its last log
                line and the log.
        """
        from tqdm import tqdm
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        child_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
        # the children import this very package, installed or not
        child_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + child_env.get(
            'PYTHONPATH', '')
        bar = None if self.verbose else tqdm(desc=desc, total=None,
                                             dynamic_ncols=True, leave=False)
        with open(log_path, 'a') as log:
            log.write(f'$ {" ".join(cmd)}\n')
            log.flush()
            proc = self._start(cmd, child_env, env)
            for line in proc.stdout:
                log.write(line)
                if self.verbose:
                    sys.stdout.write(line)
                elif bar is not None:
                    m = _ITER.search(line)
                    if m:
                        bar.total = int(m.group(2))
                        bar.n = int(m.group(1))
                        bar.refresh()
            code = proc.wait()
        if bar is not None:
            bar.close()
        if code != 0:
            with open(log_path) as f:
                tail = [line for line in f.read().splitlines()
                        if line.strip()][-1:]
            last = tail[0].strip() if tail else ''
            raise PipelineError(
                f'stage {desc} failed (exit {code}): {last[:300]} '
                f'(full log: {log_path})')
