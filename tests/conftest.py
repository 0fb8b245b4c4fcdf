"""Shared fixtures: a tiny dataset in the real on-disk layouts, and the
``--cfg-options`` that point the synthetic source-only config at it."""
import os
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Dict, List

import cv2
import numpy as np
import pytest

import mmseg_ddb  # noqa: F401  (the stack glue before any test imports mmseg)

# The pipelines the tests run train every stage: no stage cache across their
# work dirs (or from the user's ~/.cache); test_stage_cache.py sets its own.
os.environ['DDB_STAGE_CACHE'] = '0'

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYNTHETIC_CONFIG = osp.join(REPO, 'configs', 'synthetic',
                            'source_only_synthetic.py')

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR = 0, 1, 2, 8, 10, 13
IGNORE = 255
#: BGR colour of each class in the tiny scenes (cv2 writes BGR)
COLOURS = {ROAD: (90, 80, 80), SIDEWALK: (150, 170, 210),
           BUILDING: (70, 70, 160), VEGETATION: (40, 150, 40),
           SKY: (230, 160, 90), CAR: (150, 20, 20), IGNORE: (0, 0, 0)}
H, W = 128, 256


def make_scene(rng: np.random.Generator, height: int = H,
               width: int = W) -> (np.ndarray, np.ndarray):
    """A street-like image [H, W, 3] (BGR uint8) and its train-id label.

    Sky band on top, buildings with a tree, road at the bottom with a
    sidewalk strip and a car; a one-pixel ignore (255) line at the horizon.
    Band heights vary per image so the model has something to learn.
    """
    label = np.full((height, width), ROAD, np.uint8)
    horizon = int(rng.integers(height // 4, height // 2))
    street = int(rng.integers(horizon + height // 8, 3 * height // 4))
    label[:horizon] = SKY
    label[horizon:street] = BUILDING
    x0 = int(rng.integers(0, width - width // 4))
    label[horizon + 4:street, x0:x0 + width // 8] = VEGETATION
    label[street:street + height // 16] = SIDEWALK
    cx = int(rng.integers(0, width - width // 5))
    label[street + height // 8:street + height // 4,
          cx:cx + width // 6] = CAR
    label[horizon] = IGNORE
    image = np.zeros((height, width, 3), np.float32)
    for cls, colour in COLOURS.items():
        image[label == cls] = colour
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_png(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array), path


def write_gta(root: str, n: int, seed: int = 0) -> str:
    """``root/images/00000.png`` + ``root/labels/00000_labelTrainIds.png``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, label = make_scene(rng)
        write_png(osp.join(root, 'images', f'{i:05d}.png'), image)
        write_png(osp.join(root, 'labels', f'{i:05d}_labelTrainIds.png'),
                  label)
    return root


def write_cityscapes(root: str, n: int, split: str = 'val', seed: int = 1,
                     city: str = 'city') -> str:
    """``root/leftImg8bit/{split}/{city}/{city}_000000_00000i_leftImg8bit.png``
    + ``root/gtFine/{split}/{city}/..._gtFine_labelTrainIds.png``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, label = make_scene(rng)
        stem = f'{city}_000000_{i:06d}'
        write_png(osp.join(root, 'leftImg8bit', split, city,
                           f'{stem}_leftImg8bit.png'), image)
        write_png(osp.join(root, 'gtFine', split, city,
                           f'{stem}_gtFine_labelTrainIds.png'), label)
    return root


def write_tiny_data(root: str, n_train: int = 8, n_val: int = 4) -> str:
    """GTA layout in ``root/gta`` and Cityscapes val in ``root/cs``."""
    write_gta(osp.join(root, 'gta'), n_train)
    write_cityscapes(osp.join(root, 'cs'), n_val)
    return root


def tiny_options(root: str, **extra) -> Dict[str, object]:
    """``--cfg-options`` (as a dict) pointing the synthetic source-only config
    at :func:`write_tiny_data`'s ``root``: no generated data, no workers,
    batch 2."""
    opts = {
        'train_dataloader.dataset.data_root': osp.join(root, 'gta'),
        'train_dataloader.dataset.synthetic': None,
        **loader_options(root),
    }
    opts.update(extra)
    return opts


def loader_options(root: str) -> Dict[str, object]:
    """Batch 2 for training, no workers anywhere, val/test on ``root/cs``."""
    opts = {'train_dataloader.batch_size': 2}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.data_root'] = osp.join(root, 'cs')
        opts[f'{loader}.dataset.synthetic'] = None
        opts[f'{loader}.batch_size'] = 1
    return opts


def cfg_option_args(opts: Dict[str, object]) -> List[str]:
    """The dict of :func:`tiny_options` as command-line ``k=v`` words."""
    return [f'{k}={v}' for k, v in opts.items()]


#: why a ``gpu`` test does not run on this machine
NO_GPU_REASON = ('needs a CUDA GPU and none is visible here; run the gpu '
                 'tests on a GPU machine with `pytest -m gpu` (or '
                 '`bash tools/gpu_check.sh`)')


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped, with :data:`NO_GPU_REASON`, where
    torch sees no CUDA device (CI is CPU only)."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_GPU_REASON)
    for item in items:
        if item.get_closest_marker('gpu') is not None:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> str:
    """A tiny dataset (8 GTA-layout train, 4 Cityscapes-layout val images of
    128x256), written once per session."""
    return write_tiny_data(str(tmp_path_factory.mktemp('tiny_data')))


@pytest.fixture(scope='session')
def tiny_cfg(tiny_data):
    """The synthetic source-only config pointed at :func:`tiny_data`."""
    from mmengine.config import Config
    cfg = Config.fromfile(SYNTHETIC_CONFIG)
    cfg.merge_from_dict(tiny_options(tiny_data))
    return cfg


@pytest.fixture
def python() -> str:
    return sys.executable


#: ACDC's condition folders
ACDC_CONDITIONS = ('fog', 'night', 'rain', 'snow')
#: ACDC / Dark Zurich images are 1920x1080; the tiny ones keep the ratio
ADVERSE_H, ADVERSE_W = 108, 192


def _write_adverse_pair(image_path: str, label_path: str,
                        rng: np.random.Generator) -> None:
    """A tiny scene and its train-id label, plus the other label files of
    the official downloads next to it (3 channels or ids > 18: never read)."""
    image, label = make_scene(rng, ADVERSE_H, ADVERSE_W)
    write_png(image_path, image)
    write_png(label_path, label)
    stem = label_path[:-len('_labelTrainIds.png')]
    write_png(stem + '_labelIds.png',
              np.full((ADVERSE_H, ADVERSE_W), 33, np.uint8))
    write_png(stem + '_labelColor.png',
              np.full((ADVERSE_H, ADVERSE_W, 3), 128, np.uint8))


def write_acdc(root: str, counts=2, split: str = 'val',
               conditions=ACDC_CONDITIONS,
               seed: int = 3) -> Dict[str, List[tuple]]:
    """ACDC as its archives unpack:
    ``root/rgb_anon/{condition}/{split}/{seq}/{seq}_frame_00000i_rgb_anon.png``
    + ``root/gt/{condition}/{split}/{seq}/..._gt_labelTrainIds.png`` (and
    ``_gt_labelIds`` / ``_gt_labelColor`` / ``_gt_invIds``), two sequences per
    condition, and daytime references in ``rgb_anon/{condition}/{split}_ref``.

    ``counts``: images per condition, an int or ``{condition: int}``.
    Returns ``{condition: [(image path, label path), ...]}`` in file order.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for ci, condition in enumerate(conditions):
        n = counts if isinstance(counts, int) else counts[condition]
        pairs = []
        for i in range(n):
            seq = f'GOPR0{ci}{i % 2}{ci}'
            stem = f'{seq}_frame_{i:06d}'
            image = osp.join(root, 'rgb_anon', condition, split, seq,
                             f'{stem}_rgb_anon.png')
            label = osp.join(root, 'gt', condition, split, seq,
                             f'{stem}_gt_labelTrainIds.png')
            _write_adverse_pair(image, label, rng)
            write_png(label.replace('_labelTrainIds', '_invIds'),
                      np.zeros((ADVERSE_H, ADVERSE_W), np.uint8))
            write_png(osp.join(root, 'rgb_anon', condition, f'{split}_ref',
                               seq, f'{stem}_rgb_ref_anon.png'),
                      make_scene(rng, ADVERSE_H, ADVERSE_W)[0])
            pairs.append((image, label))
        written[condition] = sorted(pairs)
    return written


def write_dark_zurich(root: str, n: int = 3, seed: int = 4) -> List[tuple]:
    """Dark Zurich val as ``Dark_Zurich_val_anon.zip`` unpacks (renamed to
    ``root``): ``root/rgb_anon/val/night/{seq}/{seq}_frame_00000i_rgb_anon.png``
    + ``root/gt/val/night/{seq}/..._gt_labelTrainIds.png`` (and the other
    label files), with daytime references in ``rgb_anon/val/day``.
    Returns ``[(image path, label path), ...]`` in file order."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        seq = f'GOPR03{5 + i % 2}6'
        stem = f'{seq}_frame_{i:06d}'
        image = osp.join(root, 'rgb_anon', 'val', 'night', seq,
                         f'{stem}_rgb_anon.png')
        label = osp.join(root, 'gt', 'val', 'night', seq,
                         f'{stem}_gt_labelTrainIds.png')
        _write_adverse_pair(image, label, rng)
        write_png(label.replace('_labelTrainIds', '_invGray'),
                  np.zeros((ADVERSE_H, ADVERSE_W), np.uint8))
        write_png(osp.join(root, 'rgb_anon', 'val', 'day', f'{seq}_ref',
                           f'{stem}_ref_rgb_anon.png'),
                  make_scene(rng, ADVERSE_H, ADVERSE_W)[0])
        pairs.append((image, label))
    return sorted(pairs)


# ---------------------------------------------------------------------------
# the evaluation protocol by hand (independent of the package's pipeline)
# ---------------------------------------------------------------------------
#: ImageNet mean / std of the configs' data preprocessor (RGB)
IMAGENET_MEAN = np.array([123.675, 116.28, 103.53])
IMAGENET_STD = np.array([58.395, 57.12, 57.375])


def normalised_input(bgr: np.ndarray):
    """A BGR uint8 image as the network sees it: RGB, normalised,
    [1, 3, H, W] float32."""
    import torch
    x = (bgr[..., ::-1] - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]


def protocol_prediction(model, x, label_shape) -> np.ndarray:
    """METHOD.md 3 by hand: logits resized to the input, softmax resized to
    the label size, argmax."""
    import torch
    import torch.nn.functional as F
    with torch.no_grad():
        logits = model.decode_head(model.backbone(x))
        logits = F.interpolate(logits, x.shape[2:], mode='bilinear',
                               align_corners=False)
        probs = F.interpolate(logits.softmax(1), tuple(label_shape),
                              mode='bilinear', align_corners=False)
    return probs[0].argmax(0).numpy()


def add_to_confusion(conf: np.ndarray, label: np.ndarray,
                     pred: np.ndarray, ignore: int = IGNORE) -> np.ndarray:
    """Accumulate one image into ``conf`` (rows: label), ignore left out."""
    keep = label != ignore
    np.add.at(conf, (label[keep], pred[keep]), 1)
    return conf


#: Tensor methods that copy a value to the host: on a GPU each one waits
#: for every kernel queued before it (a host-device synchronisation)
HOST_READS = ('item', 'tolist', 'numpy', 'cpu', '__float__', '__int__',
              '__bool__', '__index__')
#: the code whose host reads count: ours and the OpenMMLab libraries (torch's
#: own, e.g. the optimizers' CPU step counters, are not ours to change)
_OURS = tuple(f'{os.sep}{name}{os.sep}' for name in
              ('mmseg_ddb', 'mmengine', 'mmseg', 'mmcv'))


@contextmanager
def host_reads(tag=lambda: None):
    """Records every host read of a tensor (``HOST_READS``) made directly by
    mmseg_ddb / mmengine / mmseg / mmcv code while active, as
    ``(tag(), method, 'file.py:function')``; ``tag`` labels each read (e.g.
    with the current iteration)."""
    import torch
    calls = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def recording(name, method):
        def read(self, *args, **kwargs):
            code = sys._getframe(1).f_code
            if any(part in code.co_filename for part in _OURS):
                calls.append((tag(), name, f'{osp.basename(code.co_filename)}'
                              f':{code.co_name}'))
            return method(self, *args, **kwargs)
        return read

    for name, method in originals.items():
        setattr(torch.Tensor, name, recording(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
