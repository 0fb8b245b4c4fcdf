"""``tools/gpu_check.sh``: the one script that proves the device rules of
DESIGN.md on the first GPU a machine has, in one budget of wall time.

Modules, each importing only those above it: ``plan`` (the steps of each
part and their order; pure), ``procs`` (running them side by side under a
deadline, the planned kills), ``results`` (what each part's steps left
behind, next to the README's CPU numbers) and ``report`` (the JSON report
and the printed table; pure). The command line is
:mod:`mmseg_ddb.tools.gpu_check`.
"""
from .plan import DEFAULT_BUDGET_S, PARTS, build_plan, plan_lines, select_parts
from .procs import STOP_RESERVE_S, Deadline, run_plan
from .report import assemble_report, format_table
from .results import (
    benchmark_result,
    ddp_result,
    load_reference,
    pipeline_result,
    step_records,
    tests_result,
)

__all__ = ['DEFAULT_BUDGET_S', 'PARTS', 'build_plan', 'plan_lines', 'select_parts',
           'STOP_RESERVE_S', 'Deadline', 'run_plan', 'assemble_report', 'format_table',
           'benchmark_result', 'ddp_result', 'load_reference', 'pipeline_result',
           'step_records', 'tests_result']
