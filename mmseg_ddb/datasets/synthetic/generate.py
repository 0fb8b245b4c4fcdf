"""The synthetic dataset on disk: the GTA5 (converted) and Cityscapes layouts, generation under
a file lock into a temporary root renamed at the end, the meta file that marks a complete root,
and a preview grid of a generated root."""
import fcntl
import glob
import json
import multiprocessing
import os
import shutil
from functools import partial
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from ...utils import images
from ...utils.fileio import atomic_write, move_folder
from ...utils.processes import die_with_parent
from .palette import CLASSES, PALETTE, category_lut
from .render import render_scene

GENERATOR_VERSION = 1
SOURCE_DIRS = dict(img_dir='gta/images', seg_map_dir='gta/labels', img_suffix='.png',
                   seg_map_suffix='_labelTrainIds.png')
TARGET_DIRS = dict(data_root='cityscapes', img_dir='leftImg8bit', seg_map_dir='gtFine',
                   img_suffix='_leftImg8bit.png', seg_map_suffix='_gtFine_labelTrainIds.png')
CITIES = dict(train='synthtown', val='synthville')
META_FILE = 'synthetic_meta.json'
#: held-out source-look images (``gta_val/gta/...``), to measure the domain gap
SOURCE_VAL_ROOT = 'gta_val'
#: the generic look (``generic/gta/...``), for the pretraining that stands in for ImageNet;
#: its labels are the 7 Cityscapes categories, not the 19 classes (see category_lut)
GENERIC_ROOT = 'generic'


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent, order-free stream per image: source, target train and val never share."""
    return np.random.default_rng(
        [seed, ('source', 'train', 'val', 'source_val', 'generic').index(split), index])


def _target_name(split: str, index: int) -> str:
    return f'{CITIES[split]}_000000_{index:06d}'


def _write_png(path: str, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise OSError(f'could not encode {path}')
    atomic_write(path, buf.tobytes())


def _jobs(num_source: int, num_target_train: int, num_target_val: int,
          num_source_val: int = 0, num_generic: int = 0):
    """(split, index, image path, label path) relative to the dataset root, in write order."""
    for split, n, prefix in (('source', num_source, ''),
                             ('source_val', num_source_val, SOURCE_VAL_ROOT + '/'),
                             ('generic', num_generic, GENERIC_ROOT + '/')):
        for i in range(n):
            yield (split, i,
                   f"{prefix}{SOURCE_DIRS['img_dir']}/{i:05d}{SOURCE_DIRS['img_suffix']}",
                   f"{prefix}{SOURCE_DIRS['seg_map_dir']}/{i:05d}"
                   f"{SOURCE_DIRS['seg_map_suffix']}")
    for split, n in (('train', num_target_train), ('val', num_target_val)):
        for i in range(n):
            stem = f'{split}/{CITIES[split]}/{_target_name(split, i)}'
            yield (split, i,
                   f"{TARGET_DIRS['data_root']}/{TARGET_DIRS['img_dir']}/{stem}"
                   f"{TARGET_DIRS['img_suffix']}",
                   f"{TARGET_DIRS['data_root']}/{TARGET_DIRS['seg_map_dir']}/{stem}"
                   f"{TARGET_DIRS['seg_map_suffix']}")


def _read_meta(root: str) -> Optional[dict]:
    path = os.path.join(root, META_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _remove_interrupted(root: str) -> None:
    """Delete a root left without meta, but only if it holds nothing but our folders."""
    ours = {'gta', 'cityscapes', SOURCE_VAL_ROOT, GENERIC_ROOT}
    foreign = [n for n in os.listdir(root) if n not in ours and not n.startswith('.')]
    if foreign:
        raise ValueError(
            f'{root} exists, is not a complete synthetic dataset (no {META_FILE}) and holds '
            f'other files ({", ".join(sorted(foreign)[:5])}); choose another root for the '
            f'synthetic data')
    shutil.rmtree(root)


def default_workers() -> int:
    """Processes that render the images: one per CPU this process may use (at most 8)
    where processes can be forked, else 1 (also in a daemonic process, e.g. a pool's
    worker, which may not start processes)."""
    if ('fork' not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                      else os.cpu_count() or 1))


def _render_job(tmp: str, args: dict, lut: Optional[np.ndarray], job: tuple) -> None:
    """Render one image and its label from its own random stream and write both PNGs
    under tmp."""
    split, i, img_path, lbl_path = job
    domain = ('source' if split.startswith('source') else
              'generic' if split == 'generic' else 'target')
    img, label = render_scene(_image_rng(args['seed'], split, i), args['height'],
                              args['width'], domain, args.get('thing_scale', 100) / 100,
                              args.get('shift', 100) / 100)
    if split == 'generic':
        label = lut[label]
    _write_png(os.path.join(tmp, img_path), img)
    _write_png(os.path.join(tmp, lbl_path), label)


def _generate_into(tmp: str, args: dict, progress: bool, workers: int = 1) -> dict:
    jobs = list(_jobs(args['num_source'], args['num_target_train'], args['num_target_val'],
                      args['num_source_val'], args.get('num_generic', 0)))
    lut = category_lut() if args.get('num_generic') else None
    for d in sorted({os.path.dirname(p) for _, _, img, lbl in jobs for p in (img, lbl)}):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    render = partial(_render_job, tmp, args, lut)
    # every image has its own random stream (_image_rng), so the files are the same
    # whichever process renders them, in whatever order
    workers = max(1, min(workers, len(jobs)))
    with tqdm(total=len(jobs), desc='synthetic data', disable=not progress, unit='img') as bar:
        if workers == 1:
            for job in jobs:
                render(job)
                bar.update()
        else:
            with multiprocessing.get_context('fork').Pool(
                    workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for _ in pool.imap_unordered(render, jobs, chunksize=8):
                    bar.update()
    meta = dict(generator='mmseg_ddb.datasets.synthetic', version=GENERATOR_VERSION, args=args,
                counts=dict(source=args['num_source'], target_train=args['num_target_train'],
                            target_val=args['num_target_val'],
                            source_val=args['num_source_val'],
                            **({'generic': args['num_generic']} if 'num_generic' in args
                               else {})),
                classes=list(CLASSES), source=SOURCE_DIRS, target=TARGET_DIRS, cities=CITIES)
    atomic_write(os.path.join(tmp, META_FILE), json.dumps(meta, indent=2).encode())
    return json.loads(json.dumps(meta))


def generate_synthetic(root: str, *, num_source: int = 400, num_target_train: int = 400,
                       num_target_val: int = 100, num_source_val: int = 50,
                       num_generic: int = 0, thing_scale: int = 100, shift: int = 100,
                       height: int = 128, width: int = 256,
                       seed: int = 0, progress: bool = True,
                       workers: Optional[int] = None) -> dict:
    """Write the synthetic source and target domains under root, unless already there.

    Layout: ``gta/{images,labels}`` (GTA5 converted: ``00000.png`` and
    ``00000_labelTrainIds.png``) and ``cityscapes/{leftImg8bit,gtFine}/{train,val}/CITY/``
    (``CITY_000000_000000_leftImg8bit.png``, ``..._gtFine_labelTrainIds.png``), plus
    ``gta_val/gta/{images,labels}`` (held-out source-look images), with ``num_generic``
    ``generic/gta/{images,labels}`` (the generic look, labelled with the 7 categories) and
    ``synthetic_meta.json``, whose presence marks a complete dataset. ``thing_scale`` (percent)
    sizes poles, signs, traffic lights, people and two-wheelers; ``shift`` (percent) moves
    the target look's colours away from the source's and strengthens its haze, vignetting and
    noise (100: as before both existed; roots made without them stay valid). Everything is written
    into ``{root}.tmp-<pid>`` and renamed to root at the end, under a lock on ``{root}.lock``
    so that concurrent callers (e.g. distributed ranks) generate once. The same arguments give
    byte-identical files, whatever ``workers`` (processes that render the images, forked;
    default :func:`default_workers`; 1 renders in this process).

    Returns:
        The meta dict (generator version, arguments, counts, layout).

    Raises:
        ValueError: root holds a dataset made with other arguments or another generator
            version, or holds foreign files.
    """
    args = dict(num_source=num_source, num_target_train=num_target_train,
                num_target_val=num_target_val, num_source_val=num_source_val,
                height=height, width=width, seed=seed)
    if num_generic:  # recorded only when used: roots made without it stay valid
        args['num_generic'] = num_generic
    if thing_scale != 100:
        args['thing_scale'] = thing_scale
    if shift != 100:
        args['shift'] = shift
    for key, value in args.items():
        if not isinstance(value, (int, np.integer)) or value < (16 if key in ('height', 'width')
                                                                else 0):
            raise ValueError(f'{key} must be an integer >= 0 (sizes >= 16), got {value!r}')
    args = {k: int(v) for k, v in args.items()}
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f'workers must be an integer >= 1, got {workers!r}')
    root = os.path.abspath(root)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root + '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            meta = _read_meta(root)
            if meta is not None:
                if meta.get('args') != args or meta.get('version') != GENERATOR_VERSION:
                    raise ValueError(
                        f'{root} holds synthetic data made with {meta.get("args")} (generator '
                        f'version {meta.get("version")}), not {args} (version '
                        f'{GENERATOR_VERSION}); delete the folder or choose another root')
                return meta
            if os.path.exists(root):
                _remove_interrupted(root)
            for stale in glob.glob(glob.escape(root) + '.tmp-*'):  # crashed runs; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            tmp = f'{root}.tmp-{os.getpid()}'
            try:
                meta = _generate_into(tmp, args, progress,
                                      default_workers() if workers is None else workers)
                move_folder(tmp, root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return meta
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_synthetic(root: str, **kwargs) -> dict:
    """Generate the synthetic dataset at root if it is not there yet (see generate_synthetic)."""
    return generate_synthetic(root, **kwargs)


def colorize(label: np.ndarray) -> np.ndarray:
    """Train-id map -> RGB with the Cityscapes palette (ignore in black)."""
    return images.colorize(label, PALETTE)


def _read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_preview(root: str, num: int = 4) -> np.ndarray:
    """A grid from a generated root: rows are source images, source labels, target (val)
    images and target labels, `num` columns."""
    meta = _read_meta(root)
    if meta is None:
        raise FileNotFoundError(f'{root} holds no complete synthetic dataset ({META_FILE})')
    rows = {'source': [], 'val': []}
    counts = dict(source=meta['counts']['source'], val=meta['counts']['target_val'])
    for split, i, img_path, lbl_path in _jobs(meta['counts']['source'], 0,
                                              meta['counts']['target_val']):
        if i < min(num, counts[split]):
            label = cv2.imread(os.path.join(root, lbl_path), cv2.IMREAD_UNCHANGED)
            rows[split].append((_read_rgb(os.path.join(root, img_path)), colorize(label)))
    grid = []
    for split in ('source', 'val'):
        if rows[split]:
            for k in (0, 1):
                grid.append(np.concatenate([pair[k] for pair in rows[split]], 1))
    widths = {g.shape[1] for g in grid}
    if not grid or len(widths) != 1:
        raise ValueError(f'need at least {num} source and target val images to preview')
    return np.concatenate(grid, 0)
