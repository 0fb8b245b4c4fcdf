"""The whole pipeline once per seed, and the summary over the seeds.

``run_seeds`` runs seed ``S`` into ``WORK_DIR/seedS/`` (a complete, resumable
pipeline work dir with its own manifest and summary, every training stage
given ``--seed S``), then writes ``WORK_DIR/summary.json`` and
``WORK_DIR/summary.png`` from :func:`aggregate_seeds`. Stages marked
``shared`` (``init.shared``: the synthetic demo's generic pretraining, which
stands in for downloaded ImageNet weights) run once, without a seed, in
``WORK_DIR/shared/``, and every seed's pipeline takes their outputs.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from ..utils.fileio import remove_stale_tmp, write_json_atomic
from .report import (
    REGRESSION_MARKS,
    add_regressions,
    flat_per_class,
    format_percent,
    plot_summary,
    regression_lines,
    trained_on,
)
from .runner import PipelineRunner, default_work_dir


def seed_work_dir(work_dir: str, seed: int) -> str:
    """Where the pipeline of ``seed`` runs: ``work_dir/seed<seed>``."""
    return osp.join(work_dir, f'seed{seed}')


def _mean(values: List[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _std(values: List[Optional[float]]) -> Optional[float]:
    """Population standard deviation (numpy's ``ddof=0``)."""
    present = [v for v in values if v is not None]
    return float(np.std(present)) if present else None


def _per_class_mean(rows: List[Optional[dict]]) -> Optional[Dict[str, float]]:
    """``{class: mean IoU}`` over the rows with a flat ``per_class``; a class
    averages the seeds that have a value for it."""
    tables = [flat_per_class((r or {}).get('per_class')) for r in rows]
    tables = [t for t in tables if t is not None]
    classes = list(dict.fromkeys(c for t in tables for c in t))
    if not classes:
        return None
    return {c: _mean([t.get(c) for t in tables]) for c in classes}


def aggregate_seeds(config: str, summaries: Dict[int, dict]) -> dict:
    """The summary over seeds of the per-seed ``summary.json`` dicts.

    Args:
        config (str): The pipeline config.
        summaries (dict): ``{seed: summary}``, in seed order.

    Returns:
        dict: ``config``, ``seeds`` and ``stages``: per stage (in order of
        first appearance) ``stage``, ``label``, ``mIoU_mean``, ``mIoU_std``
        (population std, ``ddof=0``), ``mIoU_per_seed`` (one value per
        seed, None where the seed has no mIoU or no such stage),
        ``gap_closed_mean``, ``gap_closed_per_seed`` and
        ``per_class_mean`` (``{class: mean IoU}``, None without flat
        per-class values), ``pl_mIoU_per_seed`` and ``pl_mIoU_mean`` (the
        mIoU of the pseudo-labels a monitored stage trained on),
        ``compared_with`` and ``regressions`` (``report.add_regressions``
        on the means). Means and std are over the seeds with a value (None
        when none has one).
    """
    seeds = list(summaries)
    by_seed = {s: {r['stage']: r for r in summaries[s].get('stages') or []}
               for s in seeds}
    names = list(dict.fromkeys(n for s in seeds for n in by_seed[s]))
    stages = []
    for name in names:
        rows = [by_seed[s].get(name) for s in seeds]
        label = next(r['label'] for r in rows if r is not None)
        miou = [(r or {}).get('mIoU') for r in rows]
        gap = [(r or {}).get('gap_closed') for r in rows]
        pl_rows = [trained_on((r or {}).get('pseudo_labels')) for r in rows]
        pl = [(p or {}).get('mIoU') for p in pl_rows]
        stages.append(dict(
            stage=name, label=label, mIoU_mean=_mean(miou),
            mIoU_std=_std(miou), mIoU_per_seed=miou,
            gap_closed_mean=_mean(gap), gap_closed_per_seed=gap,
            per_class_mean=_per_class_mean(rows),
            pl_mIoU_mean=_mean(pl), pl_mIoU_per_seed=pl,
            pl_per_class_mean=_per_class_mean(pl_rows),
            compared_with=next((r.get('compared_with') for r in rows
                                if r and r.get('compared_with')), None)))
    add_regressions(stages, key='mIoU_mean')
    return dict(config=config, seeds=seeds, stages=stages)


def _mean_pseudo_labels(row: dict) -> Optional[dict]:
    """A pseudo-label report of the means over seeds (for the heat map)."""
    if row.get('pl_per_class_mean') is None:
        return None
    return dict(trained_on='mean', sources=dict(mean=dict(
        mIoU=row.get('pl_mIoU_mean'), per_class=row['pl_per_class_mean'])))


def format_seed_summary(summary: dict) -> str:
    """The console table over seeds: stage, mean ± std, the per-seed
    values, the mean share of the gap closed."""
    rows = summary['stages']
    width = max([len(r['label']) for r in rows] + [5])
    seeds = ' '.join(f'{"s" + str(s):>6}' for s in summary['seeds'])

    def num(value):
        return '-' if value is None else f'{value:.2f}'

    monitored = any(r.get('pl_mIoU_mean') is not None for r in rows)
    flagged = any(r.get('regressions') for r in rows)
    head = f'{"stage":<{width}}  {"mIoU mean ± std":>15}  {seeds}  gap closed'
    head += '  PL mIoU' if monitored else ''
    head += '  flag' if flagged else ''
    lines = [head, '-' * len(head)]
    for r in rows:
        mean = '-' if r['mIoU_mean'] is None else \
            f'{r["mIoU_mean"]:.2f} ± {r["mIoU_std"]:.2f}'
        per_seed = ' '.join(f'{num(v):>6}' for v in r['mIoU_per_seed'])
        line = (f'{r["label"]:<{width}}  {mean:>15}  {per_seed}  '
                f'{format_percent(r["gap_closed_mean"]):>10}')
        if monitored:
            line += f'  {num(r.get("pl_mIoU_mean")):>7}'
        if flagged:
            line += '  ' + ', '.join(REGRESSION_MARKS[g['kind']]
                                     for g in r.get('regressions') or [])
        lines.append(line.rstrip())
    return '\n'.join(lines + regression_lines(rows))


def write_seed_summary(work_dir: str, summary: dict) -> None:
    """``work_dir/summary.json`` and ``summary.png`` (the means, ± std) of
    an :func:`aggregate_seeds` summary; prints its table."""
    write_json_atomic(osp.join(work_dir, 'summary.json'), summary)
    print(format_seed_summary(summary))
    rows = [dict(stage=r['stage'], label=r['label'], mIoU=r['mIoU_mean'],
                 mIoU_std=r['mIoU_std'], gap_closed=r['gap_closed_mean'],
                 per_class=r['per_class_mean'],
                 pseudo_labels=_mean_pseudo_labels(r))
            for r in summary['stages']]
    if any(r['mIoU'] is not None for r in rows):
        plot_summary(rows, osp.join(work_dir, 'summary.png'))


def run_shared_stages(config: str, work_dir: str,
                      runner_args: dict) -> Dict[str, dict]:
    """Run the plan's ``shared`` stages once, without a seed, in
    ``work_dir/shared`` (resumable; skipped when done) and return their
    manifest records, which each seed's manifest then takes as its own."""
    runner = PipelineRunner(config, osp.join(work_dir, 'shared'),
                            **runner_args)
    runner.stages = [s for s in runner.stages if s.shared]
    if not runner.stages:
        return {}
    print(f'=== shared by every seed -> {runner.work_dir}')
    runner.run()
    return {s.name: dict(runner.manifest.stages[s.name])
            for s in runner.stages if s.name in runner.manifest.stages}


def run_seeds(config: str, work_dir: Optional[str], seeds: Sequence[int],
              start: Optional[str] = None, only: Optional[str] = None,
              dry_run: bool = False, **runner_args) -> Optional[dict]:
    """Run the pipeline once per seed, then summarise over the seeds.

    Args:
        config (str): The pipeline config.
        work_dir (str, optional): Default ``work_dirs/<config name>``.
        seeds (sequence of int): Distinct seeds.
        start, only (str, optional): ``--from`` / ``--only``, applied to
            each seed's pipeline.
        dry_run (bool): Print each seed's plan and run nothing.
        **runner_args: The other :class:`PipelineRunner` arguments.

    Returns:
        dict | None: The :func:`aggregate_seeds` summary (None for a dry
        run).
    """
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f'--seeds: each seed once, got {list(seeds)}')
    work_dir = osp.abspath(work_dir) if work_dir else default_work_dir(config)
    runners = {s: PipelineRunner(config, seed_work_dir(work_dir, s), seed=s,
                                 **runner_args) for s in seeds}
    if dry_run:
        for runner in runners.values():
            print('\n'.join(runner.plan_lines()))
        return None
    for name in (start, only):  # a bad --from / --only: before any run
        if name:
            runners[seeds[0]].stage(name)
    shared = run_shared_stages(config, work_dir, runner_args)
    summaries = {}
    for seed, runner in runners.items():
        print(f'=== seed {seed} -> {runner.work_dir}')
        for name, record in shared.items():
            runner.manifest.update(name, **record)
        summaries[seed] = runner.run(start=start, only=only)
    summary = aggregate_seeds(osp.abspath(config), summaries)
    remove_stale_tmp(work_dir, recursive=False)  # of a killed summary write
    write_seed_summary(work_dir, summary)
    return summary
