"""Curves of training runs (``tools/plot_run.py``): the loss terms, the ST
quality weight, the learning rate and val mIoU against iterations, read from
the JSON logs mmengine writes (``WORK_DIR/<timestamp>/vis_data/<timestamp>.json``,
one JSON object per logging step)."""
import glob
import io
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DataError
from ..utils.fileio import atomic_write

#: a curve: (iteration, value) pairs in iteration order
Curve = List[Tuple[int, float]]

#: the non-loss curves, in panel order, with their panel titles
OTHER_CURVES = (('pseudo_quality', 'ST quality weight q'), ('lr', 'learning rate'),
                ('mIoU', 'val mIoU (%)'))


def find_logs(work_dir: str) -> List[str]:
    """The training JSON logs of a work dir, oldest run first (a resumed run
    adds one per start)."""
    logs = [path for path in glob.glob(osp.join(work_dir, '*', 'vis_data', '*.json'))
            if osp.basename(path) == osp.basename(osp.dirname(osp.dirname(path))) + '.json']
    return sorted(logs)


def read_run(work_dir: str) -> Dict[str, Curve]:
    """``{key: curve}`` of every numeric value a run logged: the training
    records (keys ``loss*``, ``pseudo_quality``, ``lr``, ...) and the val
    records (``mIoU``, ...). A later log (a resumed run) replaces the values
    of the iterations it repeats.

    Raises:
        DataError: no log in ``work_dir``, or a log that is not JSON lines.
    """
    if not osp.isdir(work_dir):
        raise DataError(f'work dir {work_dir} not found; give the --work-dir of a training '
                        'run (default work_dirs/<config name>)')
    logs = find_logs(work_dir)
    if not logs:
        raise DataError(f'no training log in {work_dir}: expected '
                        f'{osp.join(work_dir, "<timestamp>", "vis_data", "<timestamp>.json")}'
                        ', written by tools/train.py; give the work dir of a training run')
    values: Dict[str, Dict[int, float]] = {}
    for path in logs:
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f'{path}, line {number}: not JSON ({exc.msg}); '
                                    'is it an mmengine log?') from exc
                step = record.get('step', record.get('iter'))
                if not isinstance(step, int):
                    continue
                for key, value in record.items():
                    if key not in ('step', 'iter') and isinstance(value, (int, float)):
                        values.setdefault(key, {})[step] = float(value)
    return {key: sorted(points.items()) for key, points in values.items()}


def curve_keys(runs: Sequence[Dict[str, Curve]]) -> List[Tuple[str, str]]:
    """``(key, title)`` of the panels: the total loss, every loss term (in the
    order first logged), then ``OTHER_CURVES``; only keys some run has."""
    keys = list(dict.fromkeys(k for run in runs for k in run))
    losses = sorted((k for k in keys if k.startswith('loss')), key=lambda k: k != 'loss')
    panels = [(k, 'total loss' if k == 'loss' else k) for k in losses]
    return panels + [(k, title) for k, title in OTHER_CURVES if k in keys]


def plot_runs(work_dirs: Sequence[str], out: str,
              labels: Optional[Sequence[str]] = None) -> str:
    """One PNG of the curves of one or several runs (one line per run, one
    panel per quantity, see :func:`curve_keys`), written atomically.

    Args:
        work_dirs (Sequence[str]): Work dirs of training runs.
        out (str): The PNG to write.
        labels (Sequence[str], optional): A legend name per run (default:
            the work dir's folder name).

    Returns:
        str: ``out``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    if labels is not None and len(labels) != len(work_dirs):
        raise ValueError(f'{len(labels)} labels for {len(work_dirs)} runs')
    runs = [read_run(d) for d in work_dirs]
    labels = labels or [osp.basename(osp.normpath(d)) for d in work_dirs]
    panels = curve_keys(runs)
    if not panels:
        raise DataError(f'no loss, quality weight, lr or mIoU in the logs of '
                        f'{", ".join(work_dirs)}')
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(4.2 * cols, 3.0 * rows))
    try:
        for ax, (key, title) in zip(axes.flat, panels):
            for i, run in enumerate(runs):  # a run keeps its colour in every panel
                if key in run:
                    steps, values = zip(*run[key])
                    ax.plot(steps, values, color=f'C{i % 10}', linewidth=1.2,
                            marker='o' if key == 'mIoU' else None, markersize=3)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel('iteration', fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis('off')
        axes.flat[0].legend(handles=[Line2D([], [], color=f'C{i % 10}', label=label)
                                     for i, label in enumerate(labels)], fontsize=7)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format='png', dpi=100)
    finally:
        plt.close(fig)
    atomic_write(out, png.getvalue())
    return out
