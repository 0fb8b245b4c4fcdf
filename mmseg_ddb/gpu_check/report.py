"""The check's one JSON report and its short printed table, assembled from
the parts' results (:mod:`.results`); pure, so a test can assemble and print
a report from crafted results."""
import time
from typing import Dict, List, Optional, Sequence

from .plan import PARTS

#: the report's format; bump when a field changes meaning
REPORT_VERSION = 1


def overall_status(parts: Dict[str, dict], selected: Sequence[str]) -> str:
    """``passed`` when every selected part passed, else the worst of them:
    ``failed``, then ``timeout``, then ``not run``."""
    statuses = [parts.get(p, {}).get('status', 'not run') for p in selected]
    for worst in ('failed', 'timeout', 'not run'):
        if worst in statuses:
            return worst
    return 'passed'


def assemble_report(environment: dict, parts: Dict[str, dict], selected: Sequence[str],
                    budget_s: float, wall_s: float, started: float,
                    out: Optional[str] = None, steps: Optional[Dict[str, dict]] = None) -> dict:
    """The report: when and where it ran, the overall status, every part
    (``{'status': 'skipped'}`` for those ``--only`` / ``--skip`` left out)
    and every step (command status, time, log, the tail of a failed one's)."""
    return dict(
        version=REPORT_VERSION,
        started=time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)),
        status=overall_status(parts, selected), wall_s=round(wall_s, 1),
        budget_s=budget_s, report=out, environment=environment,
        parts={p: parts[p] if p in selected and p in parts else dict(
            status='skipped' if p not in selected else 'not run') for p in PARTS},
        steps=steps or {})


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return '-'
    seconds = int(round(seconds))
    return f'{seconds} s' if seconds < 120 else f'{seconds // 60} min {seconds % 60:02d} s'


def _tests_detail(r: dict) -> str:
    return (f"{r.get('passed', 0)} passed, {r.get('failed', 0)} failed, "
            f"{r.get('errors', 0)} errors, {r.get('skipped', 0)} skipped")


def _pipeline_detail(r: dict) -> str:
    runs = [f"{name} {run['stages_done']}/{run['stages_total']} stages in "
            f"{duration(run['seconds'])}" for name, run in r.get('runs', {}).items()]
    cpu = r.get('cpu_main_job_seconds')
    far = r.get('far_from_cpu') or []
    verdict = (f"outside the CPU tolerance: {', '.join(far)}" if far else
               'every finished stage within the CPU tolerance')
    return f"{', '.join(runs)} (CPU: {duration(cpu)}); {verdict}"


def _ddp_detail(r: dict) -> str:
    parts = []
    for name, c in r.get('runs', {}).items():
        if c.get('killed'):
            parts.append(f"{name}: killed at {r.get('kill_at')}, resumed from "
                         f"{c.get('resumed_from')}, reached {c.get('final_iter')}")
        else:
            parts.append(f"{name}: not killed ({c.get('kill_reason') or 'not run'})")
    return '; '.join(parts) + f" [{r.get('expected_backend', '')}]"


def _benchmark_detail(r: dict) -> str:
    runs = r.get('runs', {})
    out = [f'{len(runs)} result file(s)']
    fp32, bf16 = runs.get('fp32', {}), runs.get('bf16', {})
    if fp32.get('st_ms'):
        out.append(f"R101 ST step fp32 {fp32['st_ms']:.0f} ms")
    if fp32.get('st_ms') and bf16.get('st_ms'):
        out.append(f"bf16 {bf16['st_ms']:.0f} ms ({fp32['st_ms'] / bf16['st_ms']:.2f}x)")
    return ', '.join(out)


_DETAILS = dict(tests=_tests_detail, pipeline=_pipeline_detail, ddp=_ddp_detail,
                benchmark=_benchmark_detail)


def _num(value: Optional[float], delta: Optional[float] = None,
         close: Optional[bool] = None) -> str:
    if value is None:
        return '-'
    text = f'{value:.2f}'
    if delta is not None:
        text += f' {delta:+.2f}' + ('' if close else ' !')
    return text


def stage_table(rows: List[dict], runs: Sequence[str]) -> List[str]:
    """The main job's stages: CPU seed 0, CPU mean ± std, each GPU run with
    its difference from the CPU mean (``!``: outside the tolerance)."""
    width = max([len(r['label']) for r in rows] + [5])
    head = f"{'stage':<{width}}  {'CPU s0':>6}  {'CPU mean ± std':>14}" + ''.join(
        f'  {"GPU " + run:>16}' for run in runs)
    lines = [head]
    for r in rows:
        mean = f"{r['cpu_mean']:.2f} ± {r['cpu_std']:.2f}"
        lines.append(f"{r['label']:<{width}}  {r['cpu_seed0']:>6.2f}  {mean:>14}" + ''.join(
            f"  {_num(r.get(run), r.get(run + '_delta'), r.get(run + '_close')):>16}"
            for run in runs))
    return lines


def format_table(report: dict) -> str:
    """The printed summary: the device, one line per part, the main job's
    stages next to the CPU's, and where the report is."""
    env = report.get('environment') or {}
    cap = env.get('capability') or []
    device = (f"{env.get('gpu', '?')} (compute capability {'.'.join(map(str, cap))}, "
              f"{env.get('gpus', '?')} GPU(s)), torch {env.get('torch', '?')}")
    lines = [f"GPU check on {device}: {report['status'].upper()} "
             f"({duration(report['wall_s'])} of a {duration(report['budget_s'])} budget)",
             f"{'part':<10} {'status':<8} {'time':>11}  result"]
    for name in PARTS:
        r = report['parts'][name]
        status = r.get('status', 'not run')
        if status in ('skipped', 'not run'):
            detail = r.get('reason', '') or ''
        else:
            detail = _DETAILS[name](r)
            if r.get('reason') and status != 'passed':
                detail += f" ({r['reason']})"
        lines.append(f"{name:<10} {status:<8} {duration(r.get('seconds')):>11}  {detail}")
    pipeline = report['parts']['pipeline']
    if pipeline.get('rows'):
        lines += [''] + stage_table(pipeline['rows'], list(pipeline.get('runs', {})))
        tol = pipeline.get('tolerance') or {}
        lines.append(f"(target val mIoU; ! = more than max({tol.get('points')}, "
                     f"{tol.get('stds')} x CPU std) from the CPU mean of 3 seeds)")
    if report.get('report'):
        lines.append(f"report: {report['report']}")
    return '\n'.join(lines)
