#!/usr/bin/env python
"""Resize Mapillary images and their converted labels (half size by default).

DDB evaluates on Mapillary validation at half resolution (METHOD.md section 3)::

    python tools/convert_datasets/mapillary_resize.py \\
        data/mapillary/validation/images \\
        data/mapillary/cityscapes_trainIdLabel/val/label \\
        data/mapillary/half/val_img data/mapillary/half/val_label

Images are resized bicubically and keep their extension; labels (``<stem>.png``
beside each image's stem) with nearest neighbour, to exactly the same size.
Labels are written as single-channel PNGs. Pairs whose two outputs exist are
skipped, so an interrupted run can be resumed.
"""
import argparse
import os
import os.path as osp
import sys

import cv2

from mmseg_ddb.convert import (
    ConversionError,
    atomic_write_image,
    atomic_write_png,
    count_summary,
    list_files,
    read_label,
    require_dir,
    run_parallel,
    run_tool,
)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Resize images (bicubic) and their labels (nearest) by '
        '--scale, e.g. Mapillary validation to half/val_img and '
        'half/val_label.')
    parser.add_argument('img_dir', help='folder of images (*.jpg, *.png)')
    parser.add_argument('label_dir', help='folder of labels <stem>.png')
    parser.add_argument('dst_img_dir', help='output image folder')
    parser.add_argument('dst_label_dir', help='output label folder')
    parser.add_argument('--scale', default=0.5, type=float,
                        help='resize factor (default: 0.5)')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    return parser.parse_args(argv)


def resize_one(task):
    """(image, label, image out, label out, scale) -> whether it was written."""
    img_path, label_path, img_out, label_out, scale = task
    if osp.exists(img_out) and osp.exists(label_out):
        return False
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
    if img is None:
        raise ConversionError(
            f'cannot read image {img_path}; re-download or re-extract it')
    label = read_label(label_path)
    if label.shape != img.shape[:2]:
        raise ConversionError(
            f'label {label_path} is {label.shape[1]}x{label.shape[0]} but its '
            f'image {img_path} is {img.shape[1]}x{img.shape[0]}; restore the '
            'pair')
    height, width = label.shape
    size = (max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5)))
    atomic_write_image(img_out, cv2.resize(img, size,
                                           interpolation=cv2.INTER_CUBIC),
                       rgb=False)
    atomic_write_png(label_out, cv2.resize(label, size,
                                           interpolation=cv2.INTER_NEAREST))
    return True


def convert(args):
    if not args.scale > 0:
        raise ConversionError(f'--scale must be positive, got {args.scale}')
    require_dir(args.img_dir, 'image folder', 'check the IMG_DIR argument')
    require_dir(args.label_dir, 'label folder',
                'run mapillary2cityscape.py first or check the LBL_DIR '
                'argument')
    names = [n for n in list_files(args.img_dir, '')
             if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not names:
        raise ConversionError(
            f'no *.jpg or *.png image found in {args.img_dir}; check the '
            'IMG_DIR argument')
    os.makedirs(args.dst_img_dir, exist_ok=True)
    os.makedirs(args.dst_label_dir, exist_ok=True)
    tasks = []
    for name in names:
        stem = osp.splitext(name)[0]
        label = osp.join(args.label_dir, f'{stem}.png')
        if not osp.isfile(label):
            raise ConversionError(
                f'image {osp.join(args.img_dir, name)} has no label {label}; '
                'convert the labels first (mapillary2cityscape.py) or remove '
                'the image')
        tasks.append((osp.join(args.img_dir, name), label,
                      osp.join(args.dst_img_dir, name),
                      osp.join(args.dst_label_dir, f'{stem}.png'),
                      args.scale))
    written = run_parallel(resize_one, tasks, args.nproc, desc='resize')
    print(f"{count_summary(written, verb='resized', noun='pairs')}, "
          f'into {args.dst_img_dir} and {args.dst_label_dir}')


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
