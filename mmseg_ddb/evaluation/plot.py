"""Confusion-matrix figure for ``tools/test.py --plot-dir``."""
import io
import os.path as osp
from typing import Sequence

import numpy as np

from ..utils.fileio import atomic_write


def row_normalised(conf: np.ndarray) -> np.ndarray:
    """Each ground-truth row divided by its pixel count (rows without
    pixels stay 0): entry (i, j) is the share of class i predicted as j."""
    conf = np.asarray(conf, dtype=np.float64)
    total = conf.sum(1, keepdims=True)
    return np.divide(conf, total, out=np.zeros_like(conf), where=total > 0)


def save_confusion_matrix(conf: np.ndarray, class_names: Sequence[str],
                          out_dir: str, stem: str = 'confusion_matrix',
                          title: str = '') -> str:
    """Write ``<stem>.png`` (row-normalised, in percent, annotated) and
    ``<stem>.npy`` (the raw pixel counts, rows = ground truth) into
    ``out_dir``, each atomically. Returns the PNG path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    conf = np.asarray(conf)
    num = len(class_names)
    if conf.shape != (num, num):
        raise ValueError(f'confusion matrix of shape {conf.shape} for '
                         f'{num} classes')
    share = 100 * row_normalised(conf)
    size = max(6.0, 0.45 * num + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        ax.imshow(share, cmap='Blues', vmin=0, vmax=100)
        ax.set_xticks(range(num))
        ax.set_yticks(range(num))
        ax.set_xticklabels(class_names, rotation=90)
        ax.set_yticklabels(class_names)
        ax.set_xlabel('prediction')
        ax.set_ylabel('ground truth')
        ax.set_title(title or 'confusion matrix (% of each ground-truth row)')
        for i in range(num):
            for j in range(num):
                if share[i, j] >= 0.5:
                    ax.text(j, i, f'{share[i, j]:.0f}', ha='center',
                            va='center', fontsize=6,
                            color='white' if share[i, j] > 50 else 'black')
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format='png', dpi=100)
    finally:
        plt.close(fig)
    path = osp.join(out_dir, f'{stem}.png')
    atomic_write(path, png.getvalue())
    raw = io.BytesIO()
    np.save(raw, conf.astype(np.int64))
    atomic_write(osp.join(out_dir, f'{stem}.npy'), raw.getvalue())
    return path
