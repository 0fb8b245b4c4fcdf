"""The pipeline's report: ``summary.json`` rows from the manifest, the share
of the reference -> oracle gap each stage closes, the console table,
``summary.png`` (target mIoU per stage; per-class IoU heat map; the last
debug grid of each stage by name) and ``summary.md`` (the chart and those
grids on one page)."""
import glob
import io
import math
import numbers
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..engine.debug_images import DEBUG_DIR
from ..utils.fileio import atomic_write
from .plan import Stage

#: bar colours: source-only stages, the oracle, the others
_GREY, _GREEN, _BLUE = '#999999', '#4c9a2a', '#3b75af'


def summary_row(stage: Stage, record: dict) -> dict:
    """One ``summary.json`` row: a training stage's status, target mIoU,
    scalar metrics, per-class IoU (``{class: IoU}``, or ``{set: {class:
    IoU}}`` for several target sets, as ``metrics.json`` has it; None
    without metrics), time and checkpoint. ``gap_closed`` is added by
    :func:`add_gap_closed`."""
    metrics = record.get('metrics') or {}
    return dict(
        stage=stage.name, label=stage.label,
        status=record.get('status', 'pending'),
        mIoU=metrics.get('mIoU'),
        metrics={k: v for k, v in metrics.items()
                 if k != 'per_class' and isinstance(v, (int, float))},
        per_class=metrics.get('per_class'),
        seconds=record.get('seconds'),
        checkpoint=(record.get('outputs') or {}).get(
            'checkpoint', {}).get('path'))


def build_summary(config: str, stages: List[Stage],
                  records: Dict[str, dict]) -> dict:
    """``summary.json``: ``config``, ``reference_mIoU``, ``oracle_mIoU``
    (None without that stage or its metrics) and ``stages``: a
    :func:`summary_row` with ``gap_closed`` per training stage."""
    rows = [summary_row(s, records.get(s.name, {})) for s in stages
            if s.kind == 'train']
    reference, oracle = add_gap_closed(rows)
    return dict(config=config, reference_mIoU=reference, oracle_mIoU=oracle,
                stages=rows)


def gap_closed(miou: Optional[float], reference: Optional[float],
               oracle: Optional[float]) -> Optional[float]:
    """The share of the reference -> oracle gap a stage closes:
    ``(mIoU - reference) / (oracle - reference)``, a fraction (0: no better
    than the reference, 1: as good as the oracle; negative or above 1 when
    worse / better).

    Returns:
        float | None: None when a value is missing or the oracle is not
        above the reference (no gap to close).
    """
    if miou is None or reference is None or oracle is None:
        return None
    if oracle - reference <= 0:
        return None
    return (miou - reference) / (oracle - reference)


def add_gap_closed(rows: List[dict]) -> Tuple[Optional[float],
                                              Optional[float]]:
    """Set every row's ``gap_closed`` from the rows of the stages
    ``reference`` and ``oracle``.

    Returns:
        tuple: ``(reference mIoU, oracle mIoU)``, each None when the stage
        is not in ``rows`` or has no mIoU.
    """
    found = {r['stage']: r.get('mIoU') for r in rows}
    reference, oracle = found.get('reference'), found.get('oracle')
    for row in rows:
        row['gap_closed'] = gap_closed(row.get('mIoU'), reference, oracle)
    return reference, oracle


def flat_per_class(per_class) -> Optional[Dict[str, Optional[float]]]:
    """``per_class`` when it is ``{class: IoU}`` (IoU a number or None);
    None when it is missing, empty or per target set (a dict of dicts)."""
    if not isinstance(per_class, dict) or not per_class:
        return None
    if all(v is None or isinstance(v, numbers.Real)
           for v in per_class.values()):
        return per_class
    return None


def per_class_matrix(rows: List[dict]) -> Tuple[List[str], List[str],
                                                np.ndarray]:
    """The heat map's data: the per-class IoU of the rows that have one
    (:func:`flat_per_class`).

    Returns:
        tuple: ``(labels, classes, matrix)``: the rows' labels, the classes
        in order of first appearance, and a ``(len(labels), len(classes))``
        float array; NaN where a row has no (or a null) value for a class.
    """
    kept = [(r['label'], flat_per_class(r.get('per_class'))) for r in rows]
    kept = [(label, pc) for label, pc in kept if pc is not None]
    classes = list(dict.fromkeys(c for _, pc in kept for c in pc))
    matrix = np.full((len(kept), len(classes)), np.nan)
    for i, (_, pc) in enumerate(kept):
        for j, name in enumerate(classes):
            if pc.get(name) is not None:
                matrix[i, j] = pc[name]
    return [label for label, _ in kept], classes, matrix


def format_percent(fraction: Optional[float]) -> str:
    """``'48%'`` for 0.48, ``'-'`` for None."""
    return '-' if fraction is None else f'{100 * fraction:.0f}%'


def format_summary(rows: List[dict]) -> str:
    """The console table: stage, target mIoU, share of the gap closed,
    time."""
    width = max([len(r['label']) for r in rows] + [5])
    lines = [f'{"stage":<{width}}  target mIoU  gap closed  time (s)',
             '-' * (width + 35)]
    for r in rows:
        miou = '-' if r['mIoU'] is None else f'{r["mIoU"]:.2f}'
        gap = format_percent(r.get('gap_closed'))
        secs = '-' if r.get('seconds') is None else f'{r["seconds"]:.0f}'
        lines.append(f'{r["label"]:<{width}}  {miou:>11}  {gap:>10}  '
                     f'{secs:>8}')
    return '\n'.join(lines)


def _bar_colour(row: dict) -> str:
    if row.get('stage') == 'oracle':
        return _GREEN
    return _GREY if 'source' in row['label'] else _BLUE


def _plot_bars(ax, rows: List[dict]) -> None:
    """Target mIoU per stage (± ``mIoU_std`` when given), each bar with its
    value and the share of the gap it closes."""
    std = [r.get('mIoU_std') for r in rows]
    bars = ax.bar(range(len(rows)), [r['mIoU'] for r in rows],
                  color=[_bar_colour(r) for r in rows],
                  yerr=[s or 0.0 for s in std] if any(std) else None,
                  capsize=3)
    for bar, r in zip(bars, rows):
        text = f'{r["mIoU"]:.1f}'
        if r.get('gap_closed') is not None:
            text += f'\n{format_percent(r["gap_closed"])} of gap'
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), text,
                ha='center', va='bottom', fontsize=7)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r['label'] for r in rows], rotation=20, ha='right',
                       fontsize=8)
    ax.set_ylabel('target mIoU (%)')
    ax.set_ylim(0, max([r['mIoU'] for r in rows] + [1.0]) * 1.25)
    ax.set_title('DDB, stage by stage')


def _plot_heat_map(fig, ax, labels, classes, matrix) -> None:
    """Stages x classes per-class IoU, 0-100, the value in each cell."""
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap='viridis', vmin=0,
                      vmax=100, aspect='auto')
    for i, j in np.ndindex(matrix.shape):
        if not math.isnan(matrix[i, j]):
            ax.text(j, i, f'{matrix[i, j]:.0f}', ha='center', va='center',
                    fontsize=6,
                    color='black' if matrix[i, j] > 60 else 'white')
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha='right', fontsize=7)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_title('per-class IoU (%)', fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)


def last_debug_grid(stage_dir: str) -> Optional[str]:
    """The last debug grid a training stage wrote
    (``STAGE_DIR/debug_images/iter_<N>.png`` with the highest N), or None."""
    found = []
    for path in glob.glob(osp.join(stage_dir, DEBUG_DIR, 'iter_*.png')):
        match = re.fullmatch(r'iter_(\d+)\.png', osp.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def add_debug_grids(rows: List[dict], stage_dirs: Dict[str, str],
                    work_dir: str) -> None:
    """Set every row's ``debug_grid``: its stage's :func:`last_debug_grid`,
    relative to ``work_dir`` (None without one)."""
    for row in rows:
        stage_dir = stage_dirs.get(row['stage'])
        grid = last_debug_grid(stage_dir) if stage_dir else None
        row['debug_grid'] = osp.relpath(grid, work_dir) if grid else None


def write_summary_page(rows: List[dict], path: str,
                       chart: Optional[str] = 'summary.png') -> None:
    """``summary.md``, written atomically: the console table, the chart and
    the last debug grid of every stage that has one (paths relative to the
    page's folder)."""
    lines = ['# DDB pipeline summary', '', '```', format_summary(rows), '```',
             '']
    if chart:
        lines += [f'![target mIoU per stage]({chart})', '']
    grids = [r for r in rows if r.get('debug_grid')]
    if grids:
        lines += ['## What each stage trained on (last debug grid)', '']
    for r in grids:
        lines += [f'### {r["label"]}', '',
                  f'![{r["label"]}]({r["debug_grid"]})', '']
    atomic_write(path, '\n'.join(lines), mode='w', encoding='utf-8')


def plot_summary(rows: List[dict], path: str) -> None:
    """``summary.png``, written atomically: a bar chart of the rows with an
    mIoU and, below it, the per-class heat map of the rows with per-class
    values (:func:`per_class_matrix`; omitted when none has) and the paths
    of the stages' last debug grids (``debug_grid``; see ``summary.md``)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bars = [r for r in rows if r.get('mIoU') is not None]
    labels, classes, matrix = per_class_matrix(rows)
    heat = bool(labels and classes)
    width = max(1.2 * len(bars) + 2, 0.45 * len(classes) + 3 if heat else 0)
    heights = [3.4] + ([0.3 * len(labels) + 1.8] if heat else [])
    grids = [f'{r["label"]}: {r["debug_grid"]}' for r in rows
             if r.get('debug_grid')]
    notes = 0.16 * (len(grids) + 1) + 0.1 if grids else 0.0
    fig, axes = plt.subplots(len(heights), 1, squeeze=False, dpi=100,
                             figsize=(width, sum(heights) + notes),
                             gridspec_kw=dict(height_ratios=heights))
    _plot_bars(axes[0, 0], bars)
    if heat:
        _plot_heat_map(fig, axes[1, 0], labels, classes, matrix)
    fig.tight_layout(rect=(0, notes / (sum(heights) + notes), 1, 1))
    if grids:
        fig.text(0.01, 0.01, '\n'.join(
            ['last debug grid of each stage (all on one page: summary.md)']
            + grids), fontsize=7, va='bottom', family='monospace')
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    plt.close(fig)
    atomic_write(path, buf.getvalue())
