"""What each part's steps left behind, read back into the part's result: the
gpu tests' JUnit file, the main job's manifests next to the CPU numbers of
the README (``docs/synthetic_cpu_reference.json``), the DDP runs'
checkpoints and logs, the benchmark's JSON files and summary lines.

Every function takes the step results of :func:`.procs.run_plan` and paths,
so a test can feed it crafted ones."""
import glob
import json
import os.path as osp
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

from ..utils.paths import repo_path
from .plan import DDP_ITERS, DDP_KILL_AT, PIPELINE_RUNS, PIPELINE_SEED

#: the README's CPU numbers of the main job, machine-readable
REFERENCE_FILE = repo_path('docs', 'synthetic_cpu_reference.json')
#: a GPU stage agrees with the CPU when |mIoU - CPU mean of 3 seeds| <=
#: max(points, stds * CPU std): a GPU run draws other random numbers than
#: the CPU's seed 0, so it is compared as another seed would be
MIOU_TOLERANCE = dict(points=1.5, stds=3.0)
#: a part's status from its steps', worst first
_WORST_FIRST = ('failed', 'timeout', 'not run')


def load_reference(path: str = REFERENCE_FILE) -> dict:
    with open(path) as f:
        return json.load(f)


def part_status(steps: List[dict]) -> str:
    """``passed`` when every step succeeded, else the worst of ``failed``,
    ``timeout`` (the budget ran out during the part) and ``not run``; a part
    the budget cut after some steps ran is a timeout too."""
    statuses = {s['status'] for s in steps}
    if statuses <= {'ok', 'killed'}:
        return 'passed'
    if statuses == {'not run'}:
        return 'not run'
    if 'failed' in statuses:
        return 'failed'
    return 'timeout'


def _read(path: Optional[str]) -> str:
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except (OSError, TypeError):
        return ''


#: lines of a failed or stopped step's log the report keeps
TAIL_LINES = 40


def step_records(steps: Dict[str, dict]) -> Dict[str, dict]:
    """Every step's result, with the last :data:`TAIL_LINES` lines of its
    log where it failed or was stopped: the report alone says why."""
    out = {}
    for name, step in steps.items():
        out[name] = dict(step)
        if step['status'] in ('failed', 'timeout'):
            out[name]['tail'] = _read(step.get('log')).splitlines()[-TAIL_LINES:]
    return out


# -- tests ----------------------------------------------------------------------
def junit_counts(path: str) -> Optional[dict]:
    """Passed, failed, errors and skipped test cases of pytest's JUnit XML,
    with the ids of those that failed or erred; None without the file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    counts = dict(passed=0, failed=0, errors=0, skipped=0, failures=[])
    for case in root.iter('testcase'):
        kinds = {child.tag for child in case}
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if 'failure' in kinds:
            counts['failed'] += 1
            counts['failures'].append(name)
        elif 'error' in kinds:
            counts['errors'] += 1
            counts['failures'].append(name)
        elif 'skipped' in kinds:
            counts['skipped'] += 1
        else:
            counts['passed'] += 1
    return counts


def tests_result(steps: Dict[str, dict], junit: str) -> dict:
    step = steps['tests']
    counts = junit_counts(junit) or dict(passed=0, failed=0, errors=0, skipped=0,
                                         failures=[])
    status = part_status([step])
    if status == 'passed' and (counts['failed'] or counts['errors'] or not counts['passed']):
        status = 'failed'  # pytest said 0 but no test ran (e.g. all skipped)
    if status == 'failed' and step['status'] == 'ok':
        step = dict(step, reason='no gpu test passed (all skipped?)')
    return dict(status=status, seconds=step['seconds'], reason=step['reason'],
                log=step['log'], junit=junit, **counts)


# -- pipeline -------------------------------------------------------------------
def pipeline_stages(run_dir: str, stages: List[str]) -> Dict[str, dict]:
    """Status, target mIoU and seconds of each stage, from the seed's
    manifest (written as the run goes, so a cut run shows what finished)."""
    text = _read(osp.join(run_dir, f'seed{PIPELINE_SEED}', 'manifest.json'))
    records = json.loads(text).get('stages', {}) if text else {}
    out = {}
    for name in stages:
        rec = records.get(name, {})
        miou = (rec.get('metrics') or {}).get('mIoU')
        done = rec.get('status') == 'done'
        out[name] = dict(status=rec.get('status', 'not run'),
                         mIoU=miou if done else None, seconds=rec.get('seconds'))
    return out


def allowed_difference(cpu_std: float) -> float:
    return max(MIOU_TOLERANCE['points'], MIOU_TOLERANCE['stds'] * cpu_std)


def compare_with_cpu(runs: Dict[str, Dict[str, dict]], reference: dict) -> List[dict]:
    """One row per reference stage: the CPU's seed 0, mean and std, the
    allowed difference, and per GPU run its mIoU, its difference from the
    CPU mean and whether it is within the allowed difference (None where
    the stage did not finish)."""
    rows = []
    for ref in reference['stages']:
        allowed = allowed_difference(ref['mIoU_std'])
        row = dict(stage=ref['stage'], label=ref['readme_label'],
                   cpu_seed0=ref['mIoU_seed0'], cpu_mean=ref['mIoU_mean'],
                   cpu_std=ref['mIoU_std'], allowed=allowed)
        for run, stages in runs.items():
            miou = stages.get(ref['stage'], {}).get('mIoU')
            delta = None if miou is None else round(miou - ref['mIoU_mean'], 2)
            row[run] = miou
            row[f'{run}_delta'] = delta
            row[f'{run}_close'] = None if delta is None else abs(delta) <= allowed
        rows.append(row)
    return rows


def pipeline_result(steps: Dict[str, dict], work_dir: str, reference: dict) -> dict:
    names = [s['stage'] for s in reference['stages']]
    runs, stages = {}, {}
    for run in PIPELINE_RUNS:
        step = steps[f'pipeline_{run}']
        stages[run] = pipeline_stages(osp.join(work_dir, 'pipeline', run), names)
        done = sum(s['mIoU'] is not None for s in stages[run].values())
        runs[run] = dict(status=part_status([step]), seconds=step['seconds'],
                         reason=step['reason'], log=step['log'], stages_done=done,
                         stages_total=len(names), stages=stages[run])
    rows = compare_with_cpu(stages, reference)
    far = [f"{r['stage']} {run} {r[run]:.2f}" for r in rows for run in runs
           if r[f'{run}_close'] is False]
    status = part_status([steps[f'pipeline_{run}'] for run in runs])
    if far:
        status = 'failed'
    return dict(status=status, runs=runs, rows=rows, far_from_cpu=far,
                tolerance=MIOU_TOLERANCE,
                cpu_main_job_seconds=reference.get('main_job_seconds'),
                seconds=max((r['seconds'] for r in runs.values()), default=0.0))


# -- DDP ------------------------------------------------------------------------
def checkpoint_iter(work_dir: str) -> Optional[int]:
    """The iteration of the checkpoint ``work_dir/last_checkpoint`` names
    (from its ``meta``), None without one."""
    path = _read(osp.join(work_dir, 'last_checkpoint')).strip()
    if not path or not osp.isfile(path):
        return None
    import torch
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # a truncated or foreign file: no iteration to report
        return None
    return (ckpt.get('meta') or {}).get('iter')


def resumed_from(log: str) -> Optional[int]:
    """The iteration mmengine says it resumed from."""
    found = re.findall(r'resumed epoch: \d+, iter: (\d+)', log)
    return int(found[-1]) if found else None


def ddp_run_check(name: str, steps: Dict[str, dict], work_dir: str) -> dict:
    """One killed and resumed DDP run (``st`` or ``ckd``)."""
    first, resume = steps[f'ddp_{name}'], steps[f'ddp_{name}_resume']
    log = _read(resume['log'])
    check = dict(killed=first['status'] == 'killed', kill_reason=first['reason'],
                 resumed_from=resumed_from(log),
                 final_iter=checkpoint_iter(osp.join(work_dir, 'ddp', name)),
                 distributed='Distributed training: True' in log,
                 world_size=(int(m.group(1)) if (m := re.search(r'GPU number: (\d+)', log))
                             else None),
                 evaluated=bool(re.search(r'mIoU: \d', log)),
                 seconds=round(first['seconds'] + resume['seconds'], 1))
    check['ok'] = (check['killed'] and check['resumed_from'] == DDP_KILL_AT and
                   check['final_iter'] == DDP_ITERS and check['distributed'] and
                   check['evaluated'] and resume['status'] == 'ok')
    return check


def ddp_result(steps: Dict[str, dict], work_dir: str, gpus: int) -> dict:
    ddp_steps = [s for n, s in steps.items() if n.startswith('ddp_')]
    runs = {name: ddp_run_check(name, steps, work_dir) for name in ('st', 'ckd')}
    status = part_status(ddp_steps)
    if status == 'passed' and not all(r['ok'] for r in runs.values()):
        status = 'failed'
    backend = 'nccl' if gpus >= 2 else 'gloo, both ranks on GPU 0'
    return dict(status=status, runs=runs, expected_backend=backend,
                kill_at=DDP_KILL_AT, iters=DDP_ITERS,
                prototypes=steps['ddp_prototypes']['status'],
                seconds=round(sum(s['seconds'] for s in ddp_steps), 1))


# -- benchmark ------------------------------------------------------------------
#: the fields of each benchmark JSON the report keeps
BENCHMARK_FIELDS = ('supervised_ms', 'st_ms', 'ckd_ms', 'st_over_supervised',
                    'ckd_over_supervised', 'bridging_share_of_st', 'supervised_peak_mb',
                    'st_peak_mb', 'ckd_peak_mb', 'inference_images_per_s', 'st_tflops',
                    'loader_pairs_per_s', 'amp_dtype', 'batch_size', 'crop')
#: the summary lines tools/benchmark_gpu.sh prints at its end
_SUMMARY_LINE = re.compile(r'^(?:(?:fp32|bf16|bf16_channels_last)\s+sup |\S+_(?:fp32|bf16): '
                           r'batch |loader, 8 workers|.+, config: .+, batch )')


def benchmark_result(steps: Dict[str, dict], out_dir: str) -> dict:
    step = steps['benchmark']
    runs = {}
    for path in sorted(glob.glob(osp.join(out_dir, '*.json'))):
        data = json.loads(_read(path) or '{}')
        runs[osp.splitext(osp.basename(path))[0]] = {
            k: data[k] for k in BENCHMARK_FIELDS if k in data}
    lines = [ln for ln in _read(step['log']).splitlines() if _SUMMARY_LINE.match(ln)]
    return dict(status=part_status([step]), seconds=step['seconds'], reason=step['reason'],
                log=step['log'], out_dir=out_dir, runs=runs, summary_lines=lines)
