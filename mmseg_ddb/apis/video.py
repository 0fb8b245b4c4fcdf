"""Segment a video frame by frame: an overlay video at the input's frame
rate (divided by the frame stride, so the duration is kept) and, optionally,
every segmented frame's train-id map as a PNG."""
import math
import os
import os.path as osp
import shutil
from typing import Optional, Sequence

import cv2
from tqdm import tqdm

from ..errors import DataError
from ..utils.fileio import TMP_PREFIX, WriteError, atomic_save, move_folder
from ..utils.images import overlay
from .inference import inference

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv')
#: the overlay video's codec (MPEG-4 Part 2 in .mp4: every OpenCV build
#: writes it, every player reads it)
FOURCC = 'mp4v'


def is_video(path: str) -> bool:
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def open_video(path: str):
    """``(cv2.VideoCapture, fps, frame count or 0)``; one :class:`DataError`
    line when OpenCV cannot decode the file."""
    if not osp.isfile(path):
        raise DataError(f'video {path} not found')
    capture = cv2.VideoCapture(path)
    ok = capture.isOpened()
    if ok:
        ok, _ = capture.read()
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if not ok:
        capture.release()
        raise DataError(
            f'cannot read video {path}: OpenCV decodes no frame from it '
            '(truncated, corrupt, not a video, or a codec this OpenCV lacks)'
            '; re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4')
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not fps or fps != fps or fps <= 0:
        fps = 25.0  # containers without a rate: the PAL default
    count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    return capture, fps, count


def _frames(capture, stride: int):
    """(index, frame) of every ``stride``-th frame."""
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        if index % stride == 0:
            yield index, frame
        index += 1


def _replace_folder(tmp: str, folder: str) -> None:
    """Put the complete folder ``tmp`` at ``folder`` (a previous one is
    removed once the new one is in place)."""
    old = None
    if osp.lexists(folder):
        old = osp.join(osp.dirname(folder),
                       f'{TMP_PREFIX}{os.getpid()}-old-{osp.basename(folder)}')
        os.replace(folder, old)
    move_folder(tmp, folder)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def segment_video(model, path: str, out_path: str,
                  palette: Sequence[Sequence[int]], opacity: float = 0.5,
                  stride: int = 1, label_dir: Optional[str] = None,
                  batch_size: int = 4, amp: bool = False) -> int:
    """Write the overlay video of ``path`` to ``out_path`` (and, with
    ``label_dir``, ``<frame index:06d>.png`` train-id maps there).

    Every ``stride``-th frame is segmented; the output runs at the input's
    frame rate / ``stride``. Both outputs are written to temporary names and
    renamed when complete: a failure leaves neither half-written.

    Returns:
        int: the number of frames segmented.
    """
    capture, fps, count = open_video(path)
    total = math.ceil(count / stride) if count else None
    label_tmp = None
    if label_dir:
        label_tmp = osp.join(osp.dirname(osp.abspath(label_dir)),
                             f'{TMP_PREFIX}{os.getpid()}-'
                             f'{osp.basename(label_dir)}')
        shutil.rmtree(label_tmp, ignore_errors=True)
        os.makedirs(label_tmp)
    written = 0

    def flush(writer, batch):
        labels = inference(model, [f for _, f in batch], batch_size, amp)
        for (index, frame), label in zip(batch, labels):
            writer.write(overlay(frame, label, palette, opacity))
            if label_tmp and not cv2.imwrite(
                    osp.join(label_tmp, f'{index:06d}.png'), label):
                raise WriteError(f'cannot write a label frame into {label_dir}')

    def write(tmp: str) -> None:
        nonlocal written
        writer = None
        try:
            batch = []
            bar = tqdm(_frames(capture, stride), total=total,
                       desc=f'segmenting {osp.basename(path)}',
                       dynamic_ncols=True, unit='frame')
            for index, frame in bar:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(
                        tmp, cv2.VideoWriter_fourcc(*FOURCC), fps / stride,
                        (w, h))
                    if not writer.isOpened():
                        raise WriteError(f'cannot write video {out_path}: '
                                         'OpenCV cannot open a writer there')
                batch.append((index, frame))
                if len(batch) == batch_size:
                    flush(writer, batch)
                    written += len(batch)
                    batch = []
            if batch:
                flush(writer, batch)
                written += len(batch)
        finally:
            if writer is not None:
                writer.release()
            capture.release()

    try:
        atomic_save(out_path, write)
        if label_tmp:
            _replace_folder(label_tmp, label_dir)
    finally:
        if label_tmp and osp.isdir(label_tmp):
            shutil.rmtree(label_tmp, ignore_errors=True)
    return written

