"""Rare-class-sampling statistics of converted labels, in DAFormer's format
(the three JSON files that ``UDADataset``'s rare class sampling reads)."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from ..datasets.cityscapes_labels import NUM_CLASSES
from ..utils.fileio import write_json_atomic

RCS_FILES = ('sample_class_stats.json', 'sample_class_stats_dict.json',
             'samples_with_class.json')


def class_stats(label: np.ndarray) -> Dict[int, int]:
    """{train id: pixel count} of the classes 0..18 present in ``label``."""
    label = np.asarray(label)
    if label.dtype != np.uint8:
        raise ValueError(f'expected a uint8 train-id label, got {label.dtype}')
    counts = np.bincount(label.ravel(), minlength=256)
    return {c: int(counts[c]) for c in range(NUM_CLASSES) if counts[c] > 0}


def write_rcs_stats(out_dir: str, stats_list: Sequence[dict]) -> None:
    """Write the three rare-class-sampling files of DAFormer into ``out_dir``.

    Args:
        out_dir: destination folder (created if needed).
        stats_list: one dict per label: ``{"file": label_path, cls: count}``
            with integer or string class ids.

    Writes ``sample_class_stats.json`` (the list, class keys as strings),
    ``sample_class_stats_dict.json`` (file -> its class counts, without the
    ``"file"`` key, as DAFormer writes it) and ``samples_with_class.json``
    (class -> list of ``[file, count]``).
    """
    os.makedirs(out_dir, exist_ok=True)
    samples, by_file, with_class = [], {}, {}
    for stats in stats_list:
        counts = {int(k): int(v) for k, v in stats.items() if k != 'file'}
        counts = {str(c): counts[c] for c in sorted(counts)}
        samples.append({'file': stats['file'], **counts})
        by_file[stats['file']] = counts
        for c, n in counts.items():
            with_class.setdefault(c, []).append([stats['file'], n])
    with_class = {c: with_class[c] for c in sorted(with_class, key=int)}
    write_json_atomic(osp.join(out_dir, RCS_FILES[0]), samples)
    write_json_atomic(osp.join(out_dir, RCS_FILES[1]), by_file)
    write_json_atomic(osp.join(out_dir, RCS_FILES[2]), with_class)
