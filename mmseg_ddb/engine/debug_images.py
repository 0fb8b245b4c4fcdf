"""UDA debug images: what the teacher labelled and what the student trained on.

Every ``interval`` iterations :class:`UDADebugImageHook` asks the model for
the debug record of the next step (``debug_wanted``, see
``models/uda/uda_segmentor.py``), then draws it as one grid, one row per
sample, and writes it to ``WORK_DIR/debug_images/iter_<N>.png`` and to the
visualizer's backends (TensorBoard's IMAGES tab). Labels in the Cityscapes
colours, ignore (255) in black, heat maps in viridis (dark = 0, yellow = 1).

Columns (Stage 1, ST): source image, source label, target image, the EMA
teacher's pseudo-label and confidence (and, with ``pseudo_weight='pixel'``,
each target pixel's weight), bridging mask (white = source pixel),
bridged image (after its colour jitter / blur), mixed label (what the
student trained on), the student's prediction on the bridged image; the
title gives the quality weight.
Columns (Stage 2, CKD): target image, per teacher its label and its
rectification weight of that class, the ensemble label before and after
rectification, the pixels rectification changed (the new label, black
elsewhere), the augmented target and the student's prediction on it.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..datasets.cityscapes_labels import CITYSCAPES_PALETTE
from ..models.uda.uda_segmentor import DEBUG_SAMPLES
from ..utils.fileio import atomic_write
from ..utils.images import colorize, denormalise, heat_map

#: a grid column: title, kind ('image', 'label', 'heat' or 'mask') and the
#: panels of every sample ([n, H, W, 3] uint8 for images, [n, H, W] else)
Column = Tuple[str, str, np.ndarray]

#: the hook's folder of PNGs in the work dir (read by the pipeline's summary)
DEBUG_DIR = 'debug_images'
PAD = 2  # pixels between panels
HEADER = 14  # height of a column title
TITLE = 18  # height of the grid title
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def to_numpy(record: dict) -> dict:
    """The record's tensors (also in lists) as numpy arrays, on the host."""
    def convert(value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            return value.float().numpy() if value.is_floating_point() else value.numpy()
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value
    return {key: convert(value) for key, value in record.items()}


def prediction(logits: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Argmax of logits [n, C, h, w] bilinearly resized to ``size`` [n, H, W]."""
    up = F.interpolate(torch.from_numpy(logits).float(), size=tuple(size), mode='bilinear',
                       align_corners=False)
    return up.argmax(dim=1).numpy()


def st_columns(rec: dict, mean, std) -> Tuple[List[Column], str]:
    """Columns and title of a Stage 1 record (keys: ``SelfTraining``)."""
    size = rec['mixed_label'].shape[1:]
    mask = rec['mask'].reshape(rec['mask'].shape[0], *size)
    columns = [('source', 'image', denormalise(rec['source_image'], mean, std)),
               ('source label', 'label', rec['source_label']),
               ('target', 'image', denormalise(rec['target_image'], mean, std)),
               ('pseudo-label', 'label', rec['pseudo_label']),
               ('confidence', 'heat', rec['confidence']),
               ('mask', 'mask', mask),
               ('bridged', 'image', denormalise(rec['mixed_image'], mean, std)),
               ('mixed label', 'label', rec['mixed_label']),
               ('prediction', 'label', prediction(rec['student_logits'], size))]
    quality = np.asarray(rec['quality'])
    if quality.ndim:  # pseudo_weight='pixel': a weight per target pixel
        columns.insert(5, ('target weight', 'heat',
                           quality.reshape(quality.shape[0], *size)))
        return columns, (f'ST: per-pixel target weight, mean '
                         f'{float(quality.mean()):.3f}')
    return columns, f'ST: quality weight q = {float(quality):.3f}'


def ckd_columns(rec: dict, mean, std) -> Tuple[List[Column], str]:
    """Columns and title of a Stage 2 record (keys: ``CrossPathDistillation``)."""
    size = rec['label'].shape[1:]
    columns = [('target', 'image', denormalise(rec['target_image'], mean, std))]
    for name, label, weight in zip(rec['teacher_names'], rec['teacher_labels'],
                                   rec['teacher_weights']):
        columns += [(f'{name} label', 'label', label), (f'{name} weight', 'heat', weight)]
    changed = np.where(rec['label'] != rec['label_before'], rec['label'], 255)
    columns += [('ensemble', 'label', rec['label_before']),
                ('rectified', 'label', rec['label']),
                ('changed', 'label', changed),
                ('augmented', 'image', denormalise(rec['augmented_image'], mean, std)),
                ('prediction', 'label', prediction(rec['student_logits'], size))]
    share = float(np.mean(rec['label'] != rec['label_before']))
    return columns, f'CKD: rectification changed {100 * share:.1f}% of the pixels'


#: the drawing of each stage's record (its ``stage`` key)
LAYOUTS = dict(st=st_columns, ckd=ckd_columns)


def panel(kind: str, data: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """One sample of a column as RGB uint8 [H, W, 3]."""
    if kind == 'image':
        return data
    if kind == 'label':
        return colorize(data, palette)
    if kind == 'heat':
        return heat_map(data)
    if kind == 'mask':
        return np.repeat((255 * (data > 0)).astype(np.uint8)[..., None], 3, axis=2)
    raise ValueError(f'unknown panel kind {kind!r}')


def _text(canvas: np.ndarray, text: str, x: int, y: int, width: int, scale: float) -> None:
    """``text`` in black with its baseline at ``y``, shortened to ``width`` pixels."""
    while text and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[:-1]
    cv2.putText(canvas, text, (x, y), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def compose_grid(columns: List[Column], title: str, max_samples: int = DEBUG_SAMPLES,
                 panel_size: int = 256,
                 palette: Sequence[Sequence[int]] = CITYSCAPES_PALETTE) -> np.ndarray:
    """The grid: a title line, a title per column, one row per sample.

    Panels larger than ``panel_size`` on their long side are shrunk (labels
    by nearest neighbour); smaller ones keep their size. Panel (row ``r``,
    column ``c``) of an [H, W] panel starts at ``y = TITLE + HEADER + r *
    (H + PAD)``, ``x = PAD + c * (W + PAD)`` (see :func:`panel_origin`).

    Returns:
        np.ndarray: RGB uint8 [TITLE + HEADER + n * (H + PAD),
        PAD + len(columns) * (W + PAD), 3] on white.
    """
    n = min(max_samples, min(len(data) for _, _, data in columns))
    height, width = columns[0][2].shape[1:3]
    scale = min(1.0, panel_size / max(height, width))
    ph, pw = max(1, round(height * scale)), max(1, round(width * scale))
    grid = np.full((TITLE + HEADER + n * (ph + PAD), PAD + len(columns) * (pw + PAD), 3), 255,
                   np.uint8)
    _text(grid, title, PAD, TITLE - 5, grid.shape[1] - 2 * PAD, 0.45)
    for c, (name, kind, data) in enumerate(columns):
        x = PAD + c * (pw + PAD)
        _text(grid, name, x, TITLE + HEADER - 4, pw, 0.35)
        for r in range(n):
            picture = panel(kind, data[r], palette)
            if picture.shape[:2] != (ph, pw):
                interp = cv2.INTER_AREA if kind in ('image', 'heat') else cv2.INTER_NEAREST
                picture = cv2.resize(picture, (pw, ph), interpolation=interp)
            y = TITLE + HEADER + r * (ph + PAD)
            grid[y:y + ph, x:x + pw] = picture
    return grid


def panel_origin(row: int, column: int, panel_hw: Tuple[int, int]) -> Tuple[int, int]:
    """``(y, x)`` of a panel's top-left pixel in :func:`compose_grid`'s grid."""
    return TITLE + HEADER + row * (panel_hw[0] + PAD), PAD + column * (panel_hw[1] + PAD)


def draw_record(record: dict, mean, std, iteration: Optional[int] = None,
                **grid_args) -> np.ndarray:
    """The grid of a debug record (tensors or numpy arrays).

    Args:
        record (dict): A model's ``debug_record`` (its ``stage`` key picks
            the layout in ``LAYOUTS``).
        mean, std: The input normalisation (0-255, RGB).
        iteration (int, optional): Shown in the title.
        **grid_args: ``max_samples``, ``panel_size``, ``palette`` of
            :func:`compose_grid`.
    """
    stage = record.get('stage')
    if stage not in LAYOUTS:
        raise ValueError(f'debug record of stage {stage!r}; known: {sorted(LAYOUTS)}')
    columns, title = LAYOUTS[stage](to_numpy(record), mean, std)
    if any(kind == 'heat' for _, kind, _ in columns):
        title += '   (heat maps: 0 dark blue, 1 yellow)'
    if iteration is not None:
        title = f'iter {iteration}   {title}'
    return compose_grid(columns, title, **grid_args)


@HOOKS.register_module()
class UDADebugImageHook(Hook):
    """Draws the training step of a UDA model every ``interval`` iterations.

    Only the steps it draws are recorded: before such a step it sets the
    model's ``debug_wanted``; after it, it reads the record (the one
    host-device transfer), clears it and writes the grid. Other steps are
    untouched, and models without a debug record (source-only, oracle) are
    skipped.

    Args:
        interval (int): Draw every this many iterations (1-based: ``interval``,
            ``2 * interval``, ...); 0 turns the hook off.
        max_samples (int): Rows of the grid (1-4).
        panel_size (int): Longest side of a panel; larger crops are shrunk.
        out_dir (str): Folder of the PNGs, relative to the work dir.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1000, max_samples: int = DEBUG_SAMPLES,
                 panel_size: int = 256, out_dir: str = DEBUG_DIR):
        if not isinstance(interval, int) or interval < 0:
            raise ValueError(f'UDADebugImageHook: interval={interval!r}; expected an '
                             'integer >= 0 (0 = off)')
        if not 1 <= max_samples <= DEBUG_SAMPLES:
            raise ValueError(f'UDADebugImageHook: max_samples={max_samples!r}; expected '
                             f'1 to {DEBUG_SAMPLES}')
        self.interval = interval
        self.max_samples = max_samples
        self.panel_size = panel_size
        self.out_dir = out_dir

    @staticmethod
    def _uda_model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return model if hasattr(model, 'record_debug') else None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self.interval or not self.every_n_train_iters(runner, self.interval):
            return
        model = self._uda_model(runner)
        if model is not None and is_main_process():
            model.debug_record, model.debug_wanted = None, True

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._uda_model(runner)
        if model is None or not model.debug_wanted:
            return
        record, model.debug_record, model.debug_wanted = model.debug_record, None, False
        if not record:
            return
        mean, std = model.norm_mean_std
        step = runner.iter + 1
        grid = draw_record(record, mean, std, iteration=step, max_samples=self.max_samples,
                           panel_size=self.panel_size)
        ok, png = cv2.imencode('.png', grid[..., ::-1])
        if not ok:
            raise RuntimeError(f'cannot encode the debug grid of iteration {step} as PNG')
        atomic_write(osp.join(runner.work_dir, self.out_dir, f'iter_{step:06d}.png'),
                     png.tobytes())
        runner.visualizer.add_image('uda_debug', grid, step=step)
