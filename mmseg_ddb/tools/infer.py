"""Segment your own images with a DDB checkpoint.

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out DIR] [--opacity 0.5]
                          [--save-label] [--batch-size N] [--device cuda]

INPUT is an image, a folder (searched recursively) or a glob. For every image
it writes ``<stem>_mask.png`` (Cityscapes colours), ``<stem>_overlay.png``
and, with ``--save-label``, ``<stem>_trainIds.png``, each the image's size.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from tqdm import tqdm

from ..apis import colorize, inference, init_segmentor, list_images
from ..datasets.base import CITYSCAPES_METAINFO
from ..errors import ConfigError, DataError
from ..utils import check_device, user_errors_to_exit
from ..utils.fileio import atomic_write, check_writable_dir


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='image, folder or glob')
    parser.add_argument('--out', default='infer_out', help='output folder')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='mask opacity in the overlay (0..1)')
    parser.add_argument('--save-label', action='store_true',
                        help='also write the trainId map')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images of equal size per forward pass')
    parser.add_argument('--device', default=None)
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast (fp16 on GPUs without bf16)')
    parser.add_argument('--trust-checkpoint', action='store_true')
    return parser.parse_args(argv)


def _write(path: str, img: np.ndarray) -> None:
    ok, png = cv2.imencode(osp.splitext(path)[1], img)
    if not ok:
        raise DataError(f'cannot encode {path}')
    atomic_write(path, png.tobytes())


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    if not 0 <= args.opacity <= 1:
        raise ConfigError(f'--opacity must be in [0, 1], got {args.opacity}')
    files = list_images(args.input)
    check_device(args.device)
    check_writable_dir(args.out, 'output folder')
    model = init_segmentor(args.config, args.checkpoint, args.device,
                           trust=args.trust_checkpoint)
    palette = CITYSCAPES_METAINFO['palette']
    os.makedirs(args.out, exist_ok=True)
    stems = {}
    for path in tqdm(files, desc='segmenting', dynamic_ncols=True):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f'cannot read image {path}: not a readable image '
                            '(truncated, corrupt, not an image, or no read '
                            'permission); fix or remove it and rerun')
        label = inference(model, [img], amp=args.amp)[0]
        stem = osp.splitext(osp.basename(path))[0]
        n = stems.get(stem, 0)
        stems[stem] = n + 1
        if n:
            stem = f'{stem}_{n}'
        mask = colorize(label, palette)[..., ::-1]  # RGB -> BGR for cv2
        overlay = (img * (1 - args.opacity) + mask * args.opacity).astype(
            np.uint8)
        _write(osp.join(args.out, f'{stem}_mask.png'), mask)
        _write(osp.join(args.out, f'{stem}_overlay.png'), overlay)
        if args.save_label:
            _write(osp.join(args.out, f'{stem}_trainIds.png'), label)
    print(f'{len(files)} image(s) segmented into {args.out}')


if __name__ == '__main__':
    main()
