"""The pipeline's report: ``summary.json`` rows from the manifest, the share
of the reference -> oracle gap each stage closes, the stages that end below
the model they started from or below their best teacher (regressions), the
pseudo-label accuracy of monitored stages, the console table,
``summary.png`` (target mIoU per stage; per-class IoU heat map and, for
monitored stages, the per-class IoU of the pseudo-labels they trained on;
the last debug grid of each stage by name) and ``summary.md`` (the chart
and those grids on one page)."""
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


def compared_with(stage: Stage) -> dict:
    """The stages a stage must not end below: ``start``, the stage whose
    model it starts from (round r > 1 ST: the previous CKD; None
    otherwise), and ``teachers`` (CKD: its teachers' stages)."""
    start = stage.inputs.get('distilled')
    teachers = [src for key, (src, _) in stage.inputs.items()
                if key.startswith('teacher_')]
    return dict(start=start[0] if start else None, teachers=teachers)


def summary_row(stage: Stage, record: dict) -> dict:
    """One ``summary.json`` row: a training stage's status, target mIoU,
    scalar metrics, per-class IoU (``{class: IoU}``, or ``{set: {class:
    IoU}}`` for several target sets, as ``metrics.json`` has it; None
    without metrics), time, checkpoint, the stage's pseudo-label report
    (``pseudo_labels``, see ``models/uda/monitor.monitor_report``; None
    when it was not monitored) and ``compared_with``
    (:func:`compared_with`). ``gap_closed`` is added by
    :func:`add_gap_closed`, ``regressions`` by :func:`add_regressions`."""
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
            'checkpoint', {}).get('path'),
        pseudo_labels=record.get('pseudo_labels'),
        compared_with=compared_with(stage))


def build_summary(config: str, stages: List[Stage],
                  records: Dict[str, dict]) -> dict:
    """``summary.json``: ``config``, ``reference_mIoU``, ``oracle_mIoU``
    (None without that stage or its metrics) and ``stages``: a
    :func:`summary_row` with ``gap_closed`` and ``regressions`` per
    training stage."""
    rows = [summary_row(s, records.get(s.name, {})) for s in stages
            if s.kind == 'train']
    reference, oracle = add_gap_closed(rows)
    add_regressions(rows)
    return dict(config=config, reference_mIoU=reference, oracle_mIoU=oracle,
                stages=rows)


def add_regressions(rows: List[dict], key: str = 'mIoU') -> None:
    """Set every row's ``regressions``: a list of ``dict(kind, stage,
    label, mIoU)``, one per model the stage ends below (strictly):
    ``kind='start'`` for the model it started from, ``kind='teacher'`` for
    its best teacher (the teacher with the highest ``key``); empty when
    none, or when a value is missing. ``key`` is the rows' mIoU field
    (``mIoU``, or ``mIoU_mean`` over seeds)."""
    by_name = {r['stage']: r for r in rows}
    for row in rows:
        row['regressions'] = []
        value = row.get(key)
        against = row.get('compared_with') or {}
        if value is None:
            continue
        start = by_name.get(against.get('start'))
        if start is not None and start.get(key) is not None and \
                value < start[key]:
            row['regressions'].append(dict(
                kind='start', stage=start['stage'], label=start['label'],
                mIoU=start[key]))
        teachers = [by_name[t] for t in against.get('teachers') or []
                    if t in by_name and by_name[t].get(key) is not None]
        if teachers:
            best = max(teachers, key=lambda t: t[key])
            if value < best[key]:
                row['regressions'].append(dict(
                    kind='teacher', stage=best['stage'],
                    label=best['label'], mIoU=best[key]))


#: how :func:`format_summary` marks a regression, by kind
REGRESSION_MARKS = dict(start='< start', teacher='< best teacher')


def regression_lines(rows: List[dict]) -> List[str]:
    """One sentence per regression of the rows (:func:`add_regressions`)."""
    lines = []
    for r in rows:
        for reg in r.get('regressions') or []:
            what = ('the model it started from' if reg['kind'] == 'start'
                    else 'its best teacher')
            lines.append(f'! {r["label"]} ends below {what}, {reg["label"]}'
                         f' ({_num(r.get("mIoU", r.get("mIoU_mean")))} < '
                         f'{_num(reg["mIoU"])})')
    return lines


def _num(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def trained_on(pseudo_labels: Optional[dict]) -> Optional[dict]:
    """The monitored source the stage's student trained on (``trained_on``
    of the report: ST the teacher's labels, CKD the rectified ensemble),
    or None."""
    if not pseudo_labels or not pseudo_labels.get('trained_on'):
        return None
    return (pseudo_labels.get('sources') or {}).get(
        pseudo_labels['trained_on'])


def pseudo_label_rows(rows: List[dict]) -> List[dict]:
    """``dict(label, per_class)`` of every monitored row: the per-class IoU
    of the pseudo-labels it trained on (for the heat map)."""
    out = []
    for r in rows:
        source = trained_on(r.get('pseudo_labels'))
        if source is not None:
            out.append(dict(label=r['label'], per_class=source['per_class']))
    return out


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
    time; with monitored stages, the mIoU of the pseudo-labels each trained
    on (``PL mIoU``); with regressions (:func:`add_regressions`), a
    ``flag`` column and one sentence per regression under the table."""
    width = max([len(r['label']) for r in rows] + [5])
    monitored = any(r.get('pseudo_labels') for r in rows)
    flagged = any(r.get('regressions') for r in rows)
    head = f'{"stage":<{width}}  target mIoU  gap closed  time (s)'
    if monitored:
        head += '  PL mIoU'
    if flagged:
        head += '  flag'
    lines = [head, '-' * len(head)]
    for r in rows:
        miou = '-' if r['mIoU'] is None else f'{r["mIoU"]:.2f}'
        gap = format_percent(r.get('gap_closed'))
        secs = '-' if r.get('seconds') is None else f'{r["seconds"]:.0f}'
        line = f'{r["label"]:<{width}}  {miou:>11}  {gap:>10}  {secs:>8}'
        if monitored:
            source = trained_on(r.get('pseudo_labels'))
            line += f'  {_num((source or {}).get("mIoU")):>7}'
        if flagged:
            line += '  ' + ', '.join(REGRESSION_MARKS[g['kind']]
                                     for g in r.get('regressions') or [])
        lines.append(line.rstrip())
    return '\n'.join(lines + regression_lines(rows))


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


def _plot_heat_map(fig, ax, labels, classes, matrix,
                   title: str = 'per-class IoU (%)') -> None:
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
    ax.set_title(title, fontsize=9)
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


def pseudo_label_table(rows: List[dict]) -> List[str]:
    """Markdown lines: per monitored stage and label source, the pixel
    accuracy and mIoU of its labels over the whole stage (and, for ST, the
    share of pixels above the threshold); no line without monitoring."""
    monitored = [r for r in rows if r.get('pseudo_labels')]
    if not monitored:
        return []
    lines = ['## Pseudo-labels against the target labels (whole stage, '
             'monitoring only)', '',
             '| stage | labels | pixel acc. | mIoU | share above threshold |',
             '|---|---|---|---|---|']
    for r in monitored:
        report = r['pseudo_labels']
        for name, source in (report.get('sources') or {}).items():
            trained = ' (trained on)' if name == report.get('trained_on') \
                else ''
            share = report.get('confident_share') \
                if name == 'teacher' else None
            lines.append(f'| {r["label"]} | {name}{trained} | '
                         f'{_num(source.get("aAcc"))} | '
                         f'{_num(source.get("mIoU"))} | '
                         f'{format_percent(share)} |')
    return lines + ['']


def write_summary_page(rows: List[dict], path: str,
                       chart: Optional[str] = 'summary.png') -> None:
    """``summary.md``, written atomically: the console table, the chart and
    the last debug grid of every stage that has one (paths relative to the
    page's folder)."""
    lines = ['# DDB pipeline summary', '', '```', format_summary(rows), '```',
             '']
    if chart:
        lines += [f'![target mIoU per stage]({chart})', '']
    lines += pseudo_label_table(rows)
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
    values (:func:`per_class_matrix`; omitted when none has), the heat map
    of the pseudo-labels the monitored stages trained on
    (:func:`pseudo_label_rows`; omitted when none was monitored) and the
    paths of the stages' last debug grids (``debug_grid``; see
    ``summary.md``)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bars = [r for r in rows if r.get('mIoU') is not None]
    labels, classes, matrix = per_class_matrix(rows)
    heat = bool(labels and classes)
    pl_labels, pl_classes, pl_matrix = per_class_matrix(
        pseudo_label_rows(rows))
    pl_heat = bool(pl_labels and pl_classes)
    width = max(1.2 * len(bars) + 2, 0.45 * len(classes) + 3 if heat else 0,
                0.45 * len(pl_classes) + 3 if pl_heat else 0)
    heights = [3.4] + ([0.3 * len(labels) + 1.8] if heat else []) + \
        ([0.3 * len(pl_labels) + 1.8] if pl_heat else [])
    grids = [f'{r["label"]}: {r["debug_grid"]}' for r in rows
             if r.get('debug_grid')]
    notes = 0.16 * (len(grids) + 1) + 0.1 if grids else 0.0
    fig, axes = plt.subplots(len(heights), 1, squeeze=False, dpi=100,
                             figsize=(width, sum(heights) + notes),
                             gridspec_kw=dict(height_ratios=heights))
    _plot_bars(axes[0, 0], bars)
    if heat:
        _plot_heat_map(fig, axes[1, 0], labels, classes, matrix)
    if pl_heat:
        _plot_heat_map(fig, axes[len(heights) - 1, 0], pl_labels, pl_classes,
                       pl_matrix, 'per-class IoU of the pseudo-labels each '
                       'stage trained on (%, target train crops)')
    fig.tight_layout(rect=(0, notes / (sum(heights) + notes), 1, 1))
    if grids:
        fig.text(0.01, 0.01, '\n'.join(
            ['last debug grid of each stage (all on one page: summary.md)']
            + grids), fontsize=7, va='bottom', family='monospace')
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    plt.close(fig)
    atomic_write(path, buf.getvalue())
