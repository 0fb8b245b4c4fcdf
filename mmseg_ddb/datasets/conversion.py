"""Shared pieces of the dataset converters in ``tools/convert_datasets``.

METHOD.md section 3. The Cityscapes label table comes from
``cityscapesscripts.helpers.labels``; it is never retyped here.

This module only needs numpy, OpenCV, Pillow, tqdm, cityscapesscripts and
:mod:`mmseg_ddb.errors` (plain Python); it never imports mmseg or torch itself.

Writes are atomic: an image or JSON file is written to ``.tmp-<pid>-<name>``
in the same folder and then renamed, so a converter that is killed never
leaves a half-written output that a rerun would take for a finished one.
Readers skip names that start with ``.tmp-``.
"""
import json
import multiprocessing
import os
import os.path as osp
import sys
from functools import partial
from typing import (Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence, Tuple)

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS
from PIL import Image
from tqdm import tqdm

from ..errors import DataError, flat
from ..utils.fileio import WriteError, check_writable_dir

IGNORE_INDEX = 255
NUM_CLASSES = 19
TMP_PREFIX = '.tmp-'
RCS_FILES = ('sample_class_stats.json', 'sample_class_stats_dict.json',
             'samples_with_class.json')


def _evaluated_labels() -> list:
    """The cityscapesscripts labels of the 19 evaluated classes, by train id."""
    by_train_id = {
        lab.trainId: lab
        for lab in _CS_LABELS
        if not lab.ignoreInEval and 0 <= lab.trainId < IGNORE_INDEX
    }
    assert sorted(by_train_id) == list(range(NUM_CLASSES)), by_train_id
    return [by_train_id[i] for i in range(NUM_CLASSES)]


_TRAIN_LABELS = _evaluated_labels()
#: The 19 Cityscapes class names in train-id order.
CITYSCAPES_CLASSES = tuple(lab.name for lab in _TRAIN_LABELS)
#: RGB colour of each train id.
CITYSCAPES_PALETTE = tuple(tuple(lab.color) for lab in _TRAIN_LABELS)
#: Cityscapes label id of each train id.
CITYSCAPES_TRAIN_ID_TO_ID = tuple(lab.id for lab in _TRAIN_LABELS)


class ConversionError(DataError):
    """Bad converter input; the message names the file and what to do."""


# --------------------------------------------------------------------------
# lookup tables
# --------------------------------------------------------------------------
def lut_from_mapping(mapping: Dict[int, int], size: int = 256,
                     fill: int = IGNORE_INDEX) -> np.ndarray:
    """A uint8 lookup table of ``size`` entries: ``mapping`` else ``fill``."""
    lut = np.full(size, fill, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


def id_to_train_id_lut() -> np.ndarray:
    """(256,) uint8: Cityscapes label id -> train id, 255 for the rest.

    Ids that are ignored in evaluation (or have train id 255 / -1) map to 255.
    """
    return lut_from_mapping({
        lab.id: lab.trainId
        for lab in _CS_LABELS
        if 0 <= lab.id < 256 and not lab.ignoreInEval
        and 0 <= lab.trainId < IGNORE_INDEX
    })


def train_id_to_id_lut(fill: int = 0) -> np.ndarray:
    """(256,) uint8: train id -> Cityscapes label id, ``fill`` for 255."""
    return lut_from_mapping(dict(enumerate(CITYSCAPES_TRAIN_ID_TO_ID)),
                            fill=fill)


def train_id_to_color_lut() -> np.ndarray:
    """(256, 3) uint8: train id -> RGB colour, black for 255."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = np.asarray(CITYSCAPES_PALETTE, dtype=np.uint8)
    return lut


def apply_lut(label: np.ndarray, lut: np.ndarray,
              fill: int = IGNORE_INDEX) -> np.ndarray:
    """Map every pixel of an integer ``label`` through ``lut``.

    Values outside ``[0, len(lut))`` (16-bit labels, say) become ``fill``.
    """
    label = np.asarray(label)
    if label.dtype == np.uint8 and len(lut) >= 256:
        return lut[label]
    out = np.full(label.shape, fill, dtype=lut.dtype)
    inside = (label >= 0) & (label < len(lut))
    out[inside] = lut[label[inside]]
    return out


# --------------------------------------------------------------------------
# Mapillary Vistas -> Cityscapes (METHOD.md section 3)
# --------------------------------------------------------------------------
def _normalise_name(name: str) -> str:
    return name.lower().replace(' ', '').replace('-', '')


_CS_NORMALISED = {_normalise_name(n): i for i, n in enumerate(CITYSCAPES_CLASSES)}

# Substring rules, applied in this order after an exact name match.
_MAPILLARY_RULES = (
    (('trafficsign', 'front', 'back'), CITYSCAPES_CLASSES.index('traffic sign')),
    (('onrail', ), CITYSCAPES_CLASSES.index('train')),
    (('cyclist', 'rider'), CITYSCAPES_CLASSES.index('rider')),
    (('pole', 'streetlight'), CITYSCAPES_CLASSES.index('pole')),
    (('curb', 'pedestrianarea'), CITYSCAPES_CLASSES.index('sidewalk')),
)
_MAPILLARY_ROAD_NAMES = ('crosswalkplain', 'parking', 'bikelane', 'servicelane')


def mapillary_name_to_train_id(readable: str) -> int:
    """Cityscapes train id of a Mapillary class given its readable name, or 255.

    E.g. "Traffic Sign (Front)" -> 7, "Bicyclist" -> 12, "Curb Cut" -> 1,
    "Lane Marking - General" -> 0, "Car Mount" -> 255.
    """
    name = _normalise_name(readable)
    if name in _CS_NORMALISED:
        return _CS_NORMALISED[name]
    for keys, train_id in _MAPILLARY_RULES:
        if any(k in name for k in keys):
            return train_id
    if name in _MAPILLARY_ROAD_NAMES or name.startswith('lanemarking'):
        return CITYSCAPES_CLASSES.index('road')
    return IGNORE_INDEX


def mapillary_to_trainid(readable_names: Sequence[str]) -> np.ndarray:
    """(256,) uint8 LUT: Mapillary class index -> Cityscapes train id.

    ``readable_names[i]`` is the ``readable`` field of class ``i`` in the
    Mapillary ``config.json``; indices past the list map to 255.
    """
    if len(readable_names) > 256:
        raise ConversionError(
            f'{len(readable_names)} Mapillary classes do not fit 8-bit labels')
    return lut_from_mapping(
        {i: mapillary_name_to_train_id(n) for i, n in enumerate(readable_names)})


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------
def list_files(folder: str, suffix: str = '.png',
               exclude_suffix: Optional[str] = None) -> List[str]:
    """Sorted names of the files in ``folder`` ending in ``suffix``.

    Hidden files (including ``.tmp-*`` leftovers of a killed run) and names
    ending in ``exclude_suffix`` are skipped.
    """
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if (name.startswith('.') or not name.endswith(suffix)
                    or (exclude_suffix and name.endswith(exclude_suffix))
                    or not entry.is_file()):
                continue
            names.append(name)
    return sorted(names)


def require_dir(path: str, what: str, hint: str) -> None:
    """Raise :class:`ConversionError` unless ``path`` is a folder."""
    if not osp.isdir(path):
        raise ConversionError(f'{what} {path} does not exist; {hint}')


def require_writable_dir(path: str, what: str, hint: str) -> None:
    """Raise :class:`ConversionError` unless files can be written in
    ``path`` (:func:`~mmseg_ddb.utils.fileio.check_writable_dir`), before
    any work is done."""
    try:
        check_writable_dir(path, what)
    except WriteError as err:
        raise ConversionError(f'{err} {hint}') from None


def read_label(path: str) -> np.ndarray:
    """A single-channel label PNG as an integer array.

    Palette ('P') images give their palette indices, which is how GTA5 and
    Mapillary store class ids.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ('P', 'L', 'I', 'I;16', 'I;16B', 'I;16L'):
                raise ConversionError(
                    f'label {path} is a {img.mode} image; expected a single-'
                    'channel (palette or greyscale) label. Check that the '
                    'folder holds the original label PNGs, not colour maps')
            return np.array(img)
    except ConversionError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        raise ConversionError(
            f'cannot read label {path} ({type(exc).__name__}: {exc}); '
            're-download or re-extract it') from None


def read_train_ids(path: str) -> np.ndarray:
    """An existing converted label (uint8, single channel)."""
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2 or label.dtype != np.uint8:
        raise ConversionError(
            f'existing output {path} is not a readable 8-bit single-channel '
            'label; delete it and rerun the converter')
    return label


def image_size(path: str) -> tuple:
    """(width, height) of an image, read from its header only."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:
        raise ConversionError(
            f'cannot read image {path} ({type(exc).__name__}: {exc}); '
            're-download or re-extract it') from None


def check_label_size(label_path: str, label: np.ndarray,
                     image_path: str) -> None:
    """Raise :class:`ConversionError` if the image is missing or its size
    differs from the label's."""
    if not osp.isfile(image_path):
        raise ConversionError(
            f'label {label_path} has no image {image_path}; restore the '
            'image, or pass --no-size-check to convert labels without images')
    width, height = image_size(image_path)
    if label.shape[:2] != (height, width):
        raise ConversionError(
            f'label {label_path} is {label.shape[1]}x{label.shape[0]} but its '
            f'image {image_path} is {width}x{height}; restore the pair, or '
            'pass --no-size-check to convert it anyway')


# --------------------------------------------------------------------------
# atomic writing
# --------------------------------------------------------------------------
def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path``.

    ``tmp_path`` is ``.tmp-<pid>-<basename>`` in the same folder, so it keeps
    the extension that image encoders look at.
    """
    folder, base = osp.split(osp.abspath(path))
    tmp = osp.join(folder, f'{TMP_PREFIX}{os.getpid()}-{base}')
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_tmp(folder: str) -> int:
    """Delete the ``.tmp-<pid>-*`` files in ``folder`` left by a converter
    that was killed while writing (its pid no longer runs); returns how many.
    Temporary files of a converter that still runs are left alone."""
    removed = 0
    if not osp.isdir(folder):
        return removed
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(TMP_PREFIX) or not entry.is_file():
                continue
            pid = entry.name[len(TMP_PREFIX):].split('-', 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
                continue  # its writer still runs
            except ProcessLookupError:
                pass
            except OSError:  # runs, as another user
                continue
            try:
                os.remove(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def atomic_write_image(path: str, array: np.ndarray, rgb: bool = True) -> None:
    """Write an image atomically with OpenCV (format from the extension).

    Args:
        path: destination; its extension picks the encoder.
        array: (H, W) grey or (H, W, 3) colour, uint8 or uint16.
        rgb: whether a colour ``array`` is RGB (else it is OpenCV's BGR).
    """
    array = np.ascontiguousarray(array)
    if array.ndim == 3 and rgb:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)

    def write(tmp):
        try:
            ok = cv2.imwrite(tmp, array)
        except cv2.error as exc:
            raise ConversionError(f'cannot write {path} ({exc})') from None
        if not ok:
            raise ConversionError(
                f'cannot write {path}; check that its folder is writable')

    atomic_write(path, write)


def atomic_write_png(path: str, array: np.ndarray) -> None:
    """Write (H, W) grey or (H, W, 3) RGB ``array`` to the PNG ``path``."""
    if not path.lower().endswith('.png'):
        raise ValueError(f'{path} is not a .png path')
    atomic_write_image(path, array, rgb=True)


def atomic_write_json(path: str, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=2)

    atomic_write(path, write)


def atomic_write_lines(path: str, lines: Iterable[str]) -> None:
    """Write one string per line to ``path`` atomically."""
    def write(tmp):
        with open(tmp, 'w') as f:
            f.writelines(f'{line}\n' for line in lines)

    atomic_write(path, write)


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------
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


def fail(err: Exception) -> int:
    """Print ``error: <message>`` on one line to stderr; return exit code 2."""
    message = flat(err)
    print(f'error: {message}', file=sys.stderr, flush=True)
    return 2


def run_tool(convert: Callable, args) -> int:
    """A converter's exit code: 0 after ``convert(args)``, or that of
    :func:`fail` when it raises :class:`ConversionError` or an ``OSError``
    (disk full, no permission, a file where a folder should be)."""
    try:
        convert(args)
    except ConversionError as err:
        return fail(err)
    except OSError as err:
        where = f' {err.filename}' if err.filename else ''
        return fail(ConversionError(
            f'cannot access{where}: {err.strerror or err}; check the path, '
            'its permissions and the free disk space, then rerun (finished '
            'outputs are kept and skipped)'))
    return 0


def count_summary(written: Sequence[bool], verb: str = 'converted',
                  noun: str = 'labels') -> str:
    """``'converted N labels, M already done'`` for the per-file flags
    ``written`` (whether each file was written now or skipped as done)."""
    done = sum(written)
    return f'{verb} {done} {noun}, {len(written) - done} already done'


# --------------------------------------------------------------------------
# rare-class sampling statistics (DAFormer format)
# --------------------------------------------------------------------------
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
    atomic_write_json(osp.join(out_dir, RCS_FILES[0]), samples)
    atomic_write_json(osp.join(out_dir, RCS_FILES[1]), by_file)
    atomic_write_json(osp.join(out_dir, RCS_FILES[2]), with_class)


# --------------------------------------------------------------------------
# converting labels through a lookup table
# --------------------------------------------------------------------------
_TRAIN_ID_COLORS = train_id_to_color_lut()


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
