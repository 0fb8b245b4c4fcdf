"""Prove the device rules (DESIGN.md) on the first CUDA GPU of a machine.

    bash tools/gpu_check.sh [--wheels DIR] [--only PARTS | --skip PARTS]
        [--budget SECONDS] [--work-dir DIR] [--out FILE] [--dry-run]

Parts (comma-separated for --only / --skip): ``tests`` (``pytest -m gpu``),
``pipeline`` (the synthetic main job in fp32 and with --amp, side by side,
each stage's mIoU next to the README's CPU numbers), ``ddp`` (ST and CKD
with 2 ranks, killed after a checkpoint and resumed to the end) and
``benchmark`` (``tools/benchmark_gpu.sh``, alone on the GPU). Everything
runs within --budget seconds (default 480); what the budget cuts is reported
as such. Writes one JSON report (default WORK_DIR/report.json) and prints a
short table. Exit status: 0 when every part passed, 1 otherwise, 2 for a
bad command line or no visible CUDA GPU (--dry-run prints the plan
anywhere).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict

from ..errors import ConfigError
from ..gpu_check import (
    DEFAULT_BUDGET_S,
    STOP_RESERVE_S,
    Deadline,
    assemble_report,
    benchmark_result,
    build_plan,
    ddp_result,
    format_table,
    load_reference,
    pipeline_result,
    plan_lines,
    run_plan,
    select_parts,
    step_records,
    tests_result,
)
from ..utils import user_errors_to_exit
from ..utils.device import visible_gpus
from ..utils.fileio import check_writable_dir, move_folder, write_json_atomic

#: what the report says about the machine (run in a child: this process
#: keeps no CUDA context while the checks use the GPU)
_ENVIRONMENT = '''
import json, os, platform, torch
p = torch.cuda.get_device_properties(0)
print(json.dumps(dict(
    gpu=p.name, gpus=torch.cuda.device_count(),
    capability=list(torch.cuda.get_device_capability(0)),
    memory_gib=round(p.total_memory / 2**30, 1), torch=torch.__version__,
    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
    python=platform.python_version(), cpus=os.cpu_count())))
'''


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='tools/gpu_check.sh', description='Check the project on a CUDA GPU: gpu tests, '
        'the synthetic main job in fp32 and bf16 against the CPU numbers, DDP kill and '
        'resume, the GPU benchmark; one JSON report')
    parser.add_argument('--only', metavar='PARTS',
                        help='comma-separated: tests,pipeline,ddp,benchmark')
    parser.add_argument('--skip', metavar='PARTS', help='comma-separated parts to leave out')
    parser.add_argument('--budget', type=float, default=DEFAULT_BUDGET_S, metavar='SECONDS',
                        help=f'wall-clock budget of the whole check (default '
                        f'{DEFAULT_BUDGET_S}); steps running when it is spent are stopped')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help='outputs of every part (an existing one is moved aside)')
    parser.add_argument('--out', help='the JSON report (default WORK_DIR/report.json)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan and the commands; run nothing')
    return parser.parse_args(argv)


def gpu_environment() -> dict:
    """GPU name, count, compute capability, memory; torch, CUDA, cuDNN and
    Python versions; CPU count."""
    res = subprocess.run([sys.executable, '-c', _ENVIRONMENT], capture_output=True,
                         text=True, timeout=300)
    if res.returncode != 0:
        return dict(error=(res.stderr.strip().splitlines() or ['?'])[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def collect(parts, results: Dict[str, dict], work_dir: str, gpus: int) -> Dict[str, dict]:
    """Each selected part's result from its steps'."""
    makers = dict(
        tests=lambda: tests_result(results, osp.join(work_dir, 'tests', 'junit.xml')),
        pipeline=lambda: pipeline_result(results, work_dir, load_reference()),
        ddp=lambda: ddp_result(results, work_dir, gpus),
        benchmark=lambda: benchmark_result(results, osp.join(work_dir, 'benchmark')))
    return {p: makers[p]() for p in parts}


def _fresh_work_dir(work_dir: str) -> None:
    """Move a previous check's outputs aside: the pipeline would skip its
    finished stages and the DDP kill would see its old checkpoints."""
    if osp.isdir(work_dir) and os.listdir(work_dir):
        old = f'{work_dir}.old-{time.strftime("%Y%m%d-%H%M%S")}'
        move_folder(work_dir, old)
        print(f'note: the previous {work_dir} is now {old}')


@user_errors_to_exit
def main(argv=None) -> int:
    args = parse_args(argv)
    parts = select_parts(args.only, args.skip)
    if args.budget <= 0:
        raise ConfigError(f'--budget {args.budget:g}: must be a positive number of seconds')
    work_dir = osp.abspath(args.work_dir)
    out = osp.abspath(args.out or osp.join(work_dir, 'report.json'))
    plan = build_plan(parts, work_dir, sys.executable)
    if args.dry_run:
        print('\n'.join(plan_lines(plan, args.budget)))
        print(f'report: {out}')
        return 0
    if visible_gpus() == 0:
        raise ConfigError(
            'no CUDA GPU is visible (CUDA_VISIBLE_DEVICES='
            f'{os.environ.get("CUDA_VISIBLE_DEVICES", "unset")}): the GPU check needs one; '
            '--dry-run prints its plan on any machine')
    _fresh_work_dir(work_dir)
    check_writable_dir(work_dir, 'work dir')
    check_writable_dir(osp.dirname(out), 'report folder')
    # the steps stop early enough for the whole check to end within the budget
    started, deadline = time.time(), Deadline(max(args.budget - STOP_RESERVE_S, 0))
    environment = gpu_environment()
    print(f"GPU check: {', '.join(parts)} on {environment.get('gpu', '?')}, budget "
          f'{args.budget:.0f} s, logs in {work_dir}', flush=True)
    results = run_plan(plan, deadline)
    report = assemble_report(environment, collect(parts, results, work_dir,
                                                  environment.get('gpus', 1)),
                             parts, args.budget, time.time() - started, started, out,
                             steps=step_records(results))
    write_json_atomic(out, report)
    print(format_table(report))
    return 0 if report['status'] == 'passed' else 1


if __name__ == '__main__':
    sys.exit(main())
