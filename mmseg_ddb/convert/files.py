"""What the converters read and write: input folders checked before any
work, raw labels and images read with errors that name the file, and images
and text written atomically (:func:`mmseg_ddb.utils.fileio.atomic_save`), so
that a converter killed mid-write never leaves a half-written output that a
rerun would take for a finished one."""
import os.path as osp
from typing import Iterable

import cv2
import numpy as np
from PIL import Image

from ..errors import ConversionError
from ..utils.fileio import WriteError, atomic_save, atomic_write, check_writable_dir


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

    atomic_save(path, write)


def atomic_write_png(path: str, array: np.ndarray) -> None:
    """Write (H, W) grey or (H, W, 3) RGB ``array`` to the PNG ``path``."""
    if not path.lower().endswith('.png'):
        raise ValueError(f'{path} is not a .png path')
    atomic_write_image(path, array, rgb=True)


def atomic_write_lines(path: str, lines: Iterable[str]) -> None:
    """Write one string per line to ``path`` atomically."""
    atomic_write(path, ''.join(f'{line}\n' for line in lines), mode='w')
