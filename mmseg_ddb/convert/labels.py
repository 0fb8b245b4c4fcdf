"""Lookup tables from raw dataset labels to Cityscapes train ids, and the
Mapillary Vistas class-name rules (METHOD.md section 3)."""
from typing import Dict, Sequence

import numpy as np

from ..datasets.cityscapes_labels import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_ID_TO_TRAIN_ID,
    CITYSCAPES_PALETTE,
    CITYSCAPES_TRAIN_ID_TO_ID,
    IGNORE_INDEX,
)
from ..errors import ConversionError
from ..utils.images import palette_lut


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
    return lut_from_mapping(CITYSCAPES_ID_TO_TRAIN_ID)


def train_id_to_id_lut(fill: int = 0) -> np.ndarray:
    """(256,) uint8: train id -> Cityscapes label id, ``fill`` for 255."""
    return lut_from_mapping(dict(enumerate(CITYSCAPES_TRAIN_ID_TO_ID)),
                            fill=fill)


def train_id_to_color_lut() -> np.ndarray:
    """(256, 3) uint8: train id -> RGB colour, black for 255."""
    return palette_lut(CITYSCAPES_PALETTE)


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
