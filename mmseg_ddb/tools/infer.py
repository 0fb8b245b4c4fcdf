"""Segment your own images or videos with a DDB checkpoint.

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out DIR] [--opacity 0.5]
                          [--save-label] [--batch-size N] [--device cuda]
                          [--video] [--frame-stride K]

INPUT is an image, a folder (searched recursively) or a glob. For every image
it writes ``<stem>_mask.png`` (Cityscapes colours), ``<stem>_overlay.png``
and, with ``--save-label``, ``<stem>_trainIds.png``, each the image's size.

A video (``.mp4 .avi .mov .mkv``, or any file with ``--video``) becomes
``<stem>_overlay.mp4`` at its frame rate (divided by ``--frame-stride K``:
every K-th frame is segmented, the duration is kept) and, with
``--save-label``, ``<stem>_trainIds/<frame index>.png``.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from tqdm import tqdm

from ..apis import colorize, inference, init_segmentor, list_images
from ..apis.video import is_video, open_video, segment_video
from ..datasets.base import CITYSCAPES_METAINFO
from ..errors import ConfigError, DataError
from ..utils import check_device, user_errors_to_exit
from ..utils.fileio import atomic_write, check_writable_dir
from ..utils.images import overlay
from .args import add_trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='image, folder, glob or video')
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
    add_trust_checkpoint(parser)
    parser.add_argument('--video', action='store_true',
                        help='INPUT is a video (default: by its extension)')
    parser.add_argument('--frame-stride', type=int, default=1, metavar='K',
                        help='segment every K-th frame of a video')
    return parser.parse_args(argv)


def _write(path: str, img: np.ndarray) -> None:
    ok, png = cv2.imencode(osp.splitext(path)[1], img)
    if not ok:
        raise DataError(f'cannot encode {path}')
    atomic_write(path, png.tobytes())


def _video(args, model, palette) -> str:
    stem = osp.splitext(osp.basename(args.input))[0]
    out = osp.join(args.out, f'{stem}_overlay.mp4')
    labels = osp.join(args.out, f'{stem}_trainIds') if args.save_label \
        else None
    n = segment_video(model, args.input, out, palette, args.opacity,
                      args.frame_stride, labels, args.batch_size, args.amp)
    print(f'{n} frame(s) of {args.input} segmented into {out}' +
          (f' and {labels}' if labels else ''))
    return out


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    if not 0 <= args.opacity <= 1:
        raise ConfigError(f'--opacity must be in [0, 1], got {args.opacity}')
    if args.frame_stride < 1 or args.batch_size < 1:
        raise ConfigError('--frame-stride and --batch-size must be >= 1')
    video = args.video or is_video(args.input)
    files = [] if video else list_images(args.input)
    if video:  # an unreadable file fails before the model is built
        open_video(args.input)[0].release()
    check_device(args.device)
    check_writable_dir(args.out, 'output folder')
    model = init_segmentor(args.config, args.checkpoint, args.device,
                           trust=args.trust_checkpoint)
    palette = CITYSCAPES_METAINFO['palette']
    if video:
        return _video(args, model, palette)
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
        _write(osp.join(args.out, f'{stem}_mask.png'), mask)
        _write(osp.join(args.out, f'{stem}_overlay.png'),
               overlay(img, label, palette, args.opacity))
        if args.save_label:
            _write(osp.join(args.out, f'{stem}_trainIds.png'), label)
    print(f'{len(files)} image(s) segmented into {args.out}')


if __name__ == '__main__':
    main()
