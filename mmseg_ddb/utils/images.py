"""Label maps, heat maps and network inputs as RGB pictures (numpy, uint8)."""
from typing import Sequence

import cv2
import numpy as np


def palette_lut(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(256, 3) uint8: train id -> RGB from ``palette``, black beyond it
    (the ignore index 255 included)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    return lut


def colorize(label: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Train-id map -> RGB with the palette; ignore (255) and any id beyond the
    palette are black.

    Args:
        label (np.ndarray): Integer map [..., H, W] with values in 0-255.
        palette (Sequence): One RGB triple per train id.

    Returns:
        np.ndarray: uint8 [..., H, W, 3].
    """
    return palette_lut(palette)[np.asarray(label).astype(np.int64).clip(0, 255)]


def heat_map(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """A float map as an RGB heat map (viridis: dark blue = ``vmin``, yellow =
    ``vmax``; values outside are clipped).

    Args:
        values (np.ndarray): Float map [H, W].

    Returns:
        np.ndarray: uint8 [H, W, 3].
    """
    scaled = (np.asarray(values, np.float32) - vmin) / max(vmax - vmin, 1e-12)
    grey = np.round(255 * scaled.clip(0, 1)).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()


def denormalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Network inputs back to pictures: ``x * std + mean``, clipped to 0-255.

    Args:
        images (np.ndarray): Normalised float images [B, 3, H, W] (RGB).
        mean, std (Sequence[float]): The data preprocessor's per-channel
            normalisation, in 0-255 units.

    Returns:
        np.ndarray: uint8 [B, H, W, 3] (RGB).
    """
    mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    pictures = np.asarray(images, np.float32) * std + mean
    return np.round(pictures.clip(0, 255)).astype(np.uint8).transpose(0, 2, 3, 1)


def overlay(image: np.ndarray, label: np.ndarray,
            palette: Sequence[Sequence[int]], opacity: float) -> np.ndarray:
    """A BGR uint8 image with its label map painted over it (``palette`` in
    RGB), ``opacity`` of the colour over ``1 - opacity`` of the image."""
    mask = colorize(label, palette)[..., ::-1]  # RGB -> BGR for cv2
    return (image * (1 - opacity) + mask * opacity).astype(np.uint8)
