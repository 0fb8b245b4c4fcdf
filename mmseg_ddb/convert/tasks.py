"""Running a converter: labels mapped through a lookup table on worker
processes with a progress bar, finished outputs skipped on a rerun, and the
tool's exit status."""
import multiprocessing
import os.path as osp
from functools import partial
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..datasets.cityscapes_labels import IGNORE_INDEX
from ..utils.cli import exit_status
from ..utils.fileio import remove_stale_tmp
from .files import atomic_write_png, check_label_size, read_train_ids, require_writable_dir
from .labels import apply_lut, train_id_to_color_lut
from .rcs import class_stats, write_rcs_stats

_TRAIN_ID_COLORS = train_id_to_color_lut()


def run_parallel(fn: Callable, items: Sequence, nproc: int = 1,
                 desc: Optional[str] = None) -> list:
    """``[fn(x) for x in items]`` on ``nproc`` processes with a progress bar.

    ``fn`` must be a module-level function when ``nproc > 1``. The first
    exception raised by ``fn`` stops the pool and is re-raised here.
    """
    items = list(items)
    with tqdm(total=len(items), desc=desc, unit='file',
              dynamic_ncols=True) as bar:
        if nproc <= 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        chunksize = max(1, min(16, len(items) // (nproc * 8)))
        results = []
        with multiprocessing.Pool(min(nproc, len(items))) as pool:
            for result in pool.imap(fn, items, chunksize):
                results.append(result)
                bar.update()
        return results


def run_tool(convert: Callable, args) -> int:
    """A converter's exit status: 0 after ``convert(args)``, or 2 after one
    ``error:`` line (:func:`mmseg_ddb.utils.cli.exit_status`) when it raises
    a user error (:class:`~mmseg_ddb.errors.ConversionError`, an unreadable
    folder) or an ``OSError`` (disk full, no permission, a file where a
    folder should be); the line of an ``OSError`` adds that a rerun keeps the
    finished outputs."""
    return exit_status(convert, args,
                       note='finished outputs are kept and skipped on a rerun')


def count_summary(written: Sequence[bool], verb: str = 'converted',
                  noun: str = 'labels') -> str:
    """``'converted N labels, M already done'`` for the per-file flags
    ``written`` (whether each file was written now or skipped as done)."""
    done = sum(written)
    return f'{verb} {done} {noun}, {len(written) - done} already done'


class LabelTask(NamedTuple):
    """One label for :func:`convert_label`.

    Attributes:
        label_path: the raw label.
        image_path: its image, whose size the label must have; None skips
            the check (``--no-size-check``).
        out_path: the converted label (uint8 PNG) to write.
        read: ``read(label_path)`` -> integer label array. A module-level
            function (or a ``functools.partial`` of one), so that the task
            pickles for the worker processes.
        lut: lookup table that maps the read label to the output.
        fill: output value of label values past the end of ``lut``.
        color_path: where to write the Cityscapes colours of the output as
            well (it then must be a train-id label); None for no colours.
    """
    label_path: str
    image_path: Optional[str]
    out_path: str
    read: Callable[[str], np.ndarray]
    lut: np.ndarray
    fill: int = IGNORE_INDEX
    color_path: Optional[str] = None


def label_tasks(names: Sequence[str], label_dir: str,
                image_dir: Optional[str], out_dir: str,
                read: Callable[[str], np.ndarray], lut: np.ndarray, *,
                out_suffix: str, image_suffix: str = '.png',
                color_suffix: Optional[str] = None,
                fill: int = IGNORE_INDEX) -> List[LabelTask]:
    """A :class:`LabelTask` for each label ``<stem>.png`` in ``names``.

    The label is ``label_dir/<stem>.png``, its image
    ``image_dir/<stem><image_suffix>`` (no size check where ``image_dir`` is
    None), its output ``out_dir/<stem><out_suffix>`` and, with
    ``color_suffix``, its colours ``out_dir/<stem><color_suffix>``.
    """
    tasks = []
    for name in names:
        stem = osp.splitext(name)[0]
        tasks.append(LabelTask(
            label_path=osp.join(label_dir, name),
            image_path=(None if image_dir is None
                        else osp.join(image_dir, stem + image_suffix)),
            out_path=osp.join(out_dir, stem + out_suffix),
            read=read, lut=lut, fill=fill,
            color_path=(None if color_suffix is None
                        else osp.join(out_dir, stem + color_suffix))))
    return tasks


def convert_label(task: LabelTask,
                  with_stats: bool = True) -> Tuple[Optional[dict], bool]:
    """Convert one label unless its outputs exist already.

    Reads ``task.label_path`` with ``task.read``, checks its size against
    ``task.image_path``, maps it through ``task.lut`` and writes the result
    (and its colours) atomically.

    Returns:
        ``(stats, converted)``: the RCS statistics ``{"file": out_path,
        train id: pixel count}`` of the output (read back from an existing
        output; None without ``with_stats``) and whether it was written now.
    """
    outputs = [task.out_path]
    if task.color_path is not None:
        outputs.append(task.color_path)
    if all(osp.exists(path) for path in outputs):
        if not with_stats:
            return None, False
        train_ids, converted = read_train_ids(task.out_path), False
    else:
        ids = task.read(task.label_path)
        if task.image_path is not None:
            check_label_size(task.label_path, ids, task.image_path)
        train_ids = apply_lut(ids, task.lut, fill=task.fill)
        converted = True
        if task.color_path is not None:
            atomic_write_png(task.color_path, _TRAIN_ID_COLORS[train_ids])
        atomic_write_png(task.out_path, train_ids)
    if not with_stats:
        return None, converted
    return {'file': task.out_path, **class_stats(train_ids)}, converted


def convert_labels(tasks: Sequence[LabelTask], nproc: int, desc: str,
                   rcs_out_dir: Optional[str] = None) -> List[bool]:
    """:func:`convert_label` for every task on ``nproc`` processes.

    With ``rcs_out_dir``, also write the rare-class-sampling statistics of
    all outputs there and print ``converted N labels, M already done; RCS
    statistics in <rcs_out_dir>``. Without it, no statistics are computed and
    nothing is printed (the caller reports).

    Returns:
        For each task, whether its label was written now.
    """
    for folder in sorted({osp.dirname(p) for t in tasks
                          for p in (t.out_path, t.color_path) if p}):
        remove_stale_tmp(folder)
    fn = convert_label
    if rcs_out_dir is None:
        fn = partial(convert_label, with_stats=False)
    else:
        require_writable_dir(rcs_out_dir, 'statistics folder',
                             'pass a writable folder with -o/--out-dir')
    results = run_parallel(fn, tasks, nproc, desc=desc)
    written = [converted for _, converted in results]
    if rcs_out_dir is not None:
        write_rcs_stats(rcs_out_dir, [stats for stats, _ in results])
        print(f'{count_summary(written)}; RCS statistics in {rcs_out_dir}')
    return written
