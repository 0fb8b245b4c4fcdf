"""What ``tools/gpu_check.sh`` runs: the steps of each part, their command
lines, logs and work folders, and the order (phases of lanes run side by
side). Pure: builds lists, starts nothing; ``--dry-run`` prints them."""
import os.path as osp
import shlex
import socket
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import ConfigError
from ..utils.paths import REPO_ROOT

#: the parts, in the order they are reported
PARTS = ('tests', 'pipeline', 'ddp', 'benchmark')
#: the whole check's wall-clock budget by default: 8 minutes
DEFAULT_BUDGET_S = 480
#: the synthetic main job and the seed whose CPU numbers the README reports
PIPELINE_CONFIG = 'configs/synthetic/ddb_synthetic.py'
PIPELINE_SEED = 0
#: the two precisions of the main job, run side by side
PIPELINE_RUNS = {'fp32': [], 'amp': ['--amp']}
#: DDP runs: ITERS iterations, a checkpoint every KILL_AT; killed (SIGKILL)
#: once the checkpoint of iteration KILL_AT is complete, then resumed
DDP_RANKS = 2
DDP_ITERS = 60
DDP_KILL_AT = 20
DDP_ST_CONFIG = 'configs/synthetic/st_cu_synthetic.py'
DDP_CKD_CONFIG = 'configs/synthetic/ckd_synthetic.py'


@dataclass
class Step:
    """One command of a part.

    Attributes:
        name: Unique, e.g. ``pipeline_fp32`` or ``ddp_st_resume``.
        part: One of :data:`PARTS`.
        cmd: The command line (run in the repository root).
        log: File receiving its stdout and stderr.
        env: Extra environment variables.
        kill_at: Name of a checkpoint (``iter_20.pth``): SIGKILL the step's
            process group once ``work_dir/last_checkpoint`` points at it.
        work_dir: The step's work folder, where it has one.
    """
    name: str
    part: str
    cmd: List[str]
    log: str
    env: Dict[str, str] = field(default_factory=dict)
    kill_at: Optional[str] = None
    work_dir: Optional[str] = None

    def line(self) -> str:
        """The command as a shell line, with its environment variables."""
        env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in self.env.items())
        return (env + ' ' if env else '') + shlex.join(self.cmd)


#: a plan: phases run one after the other; a phase's lanes run side by
#: side, a lane's steps one after the other
Plan = List[List[List[Step]]]


def select_parts(only: Optional[str], skip: Optional[str]) -> List[str]:
    """The parts ``--only`` / ``--skip`` (comma-separated names) leave, in
    :data:`PARTS` order.

    Raises:
        ConfigError: An unknown part, both options, or nothing left.
    """
    if only and skip:
        raise ConfigError('--only and --skip exclude each other')
    named = [p.strip() for p in (only or skip or '').split(',') if p.strip()]
    unknown = [p for p in named if p not in PARTS]
    if unknown:
        raise ConfigError(f'unknown part(s) {", ".join(unknown)}; the parts are '
                          f'{", ".join(PARTS)}')
    parts = [p for p in PARTS if (p in named) == bool(only)] if named else list(PARTS)
    if not parts:
        raise ConfigError('--skip leaves no part to run')
    return parts


def free_port() -> int:
    """A TCP port nobody listens on now (torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tests_steps(work_dir: str, python: str) -> List[Step]:
    out = osp.join(work_dir, 'tests')
    return [Step('tests', 'tests',
                 [python, '-m', 'pytest', '-m', 'gpu', '-q', '-rfE', '-p', 'no:cacheprovider',
                  f'--junitxml={osp.join(out, "junit.xml")}', 'tests'],
                 osp.join(out, 'pytest.log'), work_dir=out)]


def pipeline_steps(work_dir: str, python: str) -> List[Step]:
    """One step per precision: the whole synthetic main job with
    ``--seeds 0`` (the README's seed-0 column)."""
    steps = []
    for run, extra in PIPELINE_RUNS.items():
        out = osp.join(work_dir, 'pipeline', run)
        steps.append(Step(f'pipeline_{run}', 'pipeline',
                          [python, 'tools/ddb_pipeline.py', PIPELINE_CONFIG,
                           '--seeds', str(PIPELINE_SEED), '--work-dir', out, *extra],
                          osp.join(work_dir, 'pipeline', f'{run}.log'), work_dir=out))
    return steps


def ddp_options(iters: int = DDP_ITERS, every: int = DDP_KILL_AT) -> List[str]:
    """``--cfg-options`` of the short DDP runs: random init (no generic
    pretraining needed), ``iters`` iterations, a checkpoint every
    ``every`` (the last two kept), evaluation at the end."""
    return ['model.backbone.init_cfg=None', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={every}',
            'default_hooks.checkpoint.max_keep_ckpts=2']


def ddp_steps(work_dir: str, python: str) -> List[Step]:
    """ST with 2 ranks killed after its first checkpoint and resumed; the
    prototypes of its final checkpoint; CKD with 2 ranks (both teachers the
    ST run) killed and resumed the same way."""
    out = osp.join(work_dir, 'ddp')
    st_dir, ckd_dir = osp.join(out, 'st'), osp.join(out, 'ckd')
    st_ckpt = osp.join(st_dir, f'iter_{DDP_ITERS}.pth')
    protos = osp.join(out, 'prototypes_st.pth')
    teachers = [f'uda.teachers.{i}.{key}={path}' for i in (0, 1)
                for key, path in (('checkpoint', st_ckpt), ('prototypes', protos))]
    steps = []
    for name, config, run_dir, extra in (('st', DDP_ST_CONFIG, st_dir, []),
                                         ('ckd', DDP_CKD_CONFIG, ckd_dir, teachers)):
        train = ['bash', 'tools/dist_train.sh', config, str(DDP_RANKS), '--work-dir', run_dir]
        options = ['--cfg-options', *ddp_options(), *extra]
        steps.append(Step(f'ddp_{name}', 'ddp', train + options,
                          osp.join(out, f'{name}.log'),
                          env=dict(PYTHON=python, PORT=str(free_port())),
                          kill_at=f'iter_{DDP_KILL_AT}.pth', work_dir=run_dir))
        steps.append(Step(f'ddp_{name}_resume', 'ddp', train + ['--resume'] + options,
                          osp.join(out, f'{name}_resume.log'),
                          env=dict(PYTHON=python, PORT=str(free_port())),
                          work_dir=run_dir))
        if name == 'st':
            steps.append(Step('ddp_prototypes', 'ddp',
                              [python, 'tools/cal_prototypes/cal_prototype.py', DDP_ST_CONFIG,
                               st_ckpt, '--epochs', '1', '--out', protos, '--no-progress',
                               '--cfg-options', 'model.backbone.init_cfg=None'],
                              osp.join(out, 'prototypes.log'), work_dir=out))
    return steps


def benchmark_steps(work_dir: str, python: str) -> List[Step]:
    out = osp.join(work_dir, 'benchmark')
    return [Step('benchmark', 'benchmark', ['bash', 'tools/benchmark_gpu.sh', out],
                 osp.join(work_dir, 'benchmark.log'), env=dict(PYTHON=python),
                 work_dir=out)]


def build_plan(parts: Sequence[str], work_dir: str, python: str) -> Plan:
    """The phases of the selected parts.

    Phase 1, side by side: the fp32 and the ``--amp`` main job (one lane
    each), and a lane with the gpu tests then the DDP runs. Phase 2, alone
    so that nothing else shares the GPU while it times: the benchmark.
    """
    makers = dict(tests=tests_steps, pipeline=pipeline_steps, ddp=ddp_steps,
                  benchmark=benchmark_steps)
    steps = {p: makers[p](work_dir, python) for p in parts}
    first = [[s] for s in steps.get('pipeline', [])]
    serial = steps.get('tests', []) + steps.get('ddp', [])
    if serial:
        first.append(serial)
    phases = [first] if first else []
    if 'benchmark' in steps:
        phases.append([steps['benchmark']])
    return phases


def plan_lines(plan: Plan, budget_s: float) -> List[str]:
    """The ``--dry-run`` print-out: every phase, lane and command."""
    lines = [f'gpu check plan (budget {budget_s:.0f} s; steps still running when it is '
             'spent are stopped, steps not started are reported as not run), every '
             f'command run in {REPO_ROOT}:']
    for i, phase in enumerate(plan, 1):
        side = ', side by side' if len(phase) > 1 else ''
        lines.append(f'phase {i}: {len(phase)} lane(s){side}')
        for j, lane in enumerate(phase, 1):
            for step in lane:
                kill = (f'  [SIGKILL once {step.kill_at} is written]'
                        if step.kill_at else '')
                lines.append(f'  lane {j}: {step.name}{kill}')
                lines.append(f'    $ {step.line()}')
                lines.append(f'    log: {step.log}')
    return lines
