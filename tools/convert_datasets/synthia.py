#!/usr/bin/env python
"""Convert SYNTHIA-RAND-CITYSCAPES labels to Cityscapes train ids and write
the RCS statistics.

Layout (METHOD.md section 3)::

    PATH/RGB/0000000.png
    PATH/GT/LABELS/0000000.png                 16-bit, 3 channels; the class
                                               is the last channel as read by
                                               cv2.imread(IMREAD_UNCHANGED)
    PATH/GT/LABELS/0000000_labelTrainIds.png   written: train ids 0..18, 255
    OUT/sample_class_stats.json, ...           written (OUT defaults to PATH)

Terrain, truck and train never occur in SYNTHIA (the usual 16 classes).
Labels whose output exists are skipped, so an interrupted run can be resumed.
"""
import argparse
import os.path as osp
import sys

import cv2

from mmseg_ddb.convert import (
    ConversionError,
    convert_labels,
    label_tasks,
    list_files,
    lut_from_mapping,
    require_dir,
    run_tool,
)

#: SYNTHIA class id -> Cityscapes train id (METHOD.md section 3).
SYNTHIA_TO_TRAIN_ID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18
}
LUT = lut_from_mapping(SYNTHIA_TO_TRAIN_ID)
OUT_SUFFIX = '_labelTrainIds.png'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert SYNTHIA-RAND-CITYSCAPES labels (GT/LABELS/*.png, '
        '16-bit) to *_labelTrainIds.png and write the rare-class-sampling '
        'statistics.')
    parser.add_argument('path', help='SYNTHIA root, holding RGB/ and '
                        'GT/LABELS/')
    parser.add_argument('--gt-dir', default=osp.join('GT', 'LABELS'),
                        help='label folder under PATH (default: GT/LABELS)')
    parser.add_argument('-o', '--out-dir',
                        help='where the RCS json files go (default: PATH)')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    parser.add_argument('--no-size-check', action='store_true',
                        help='do not compare each label with its image size')
    return parser.parse_args(argv)


def read_synthia_ids(path):
    """The class-id channel of a SYNTHIA label (last channel in cv2 order)."""
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise ConversionError(
            f'cannot read label {path}; re-download or re-extract it')
    if label.ndim != 3:
        raise ConversionError(
            f'label {path} has one channel; expected the original 3-channel '
            '16-bit SYNTHIA label (GT/LABELS, not GT/COLOR or a converted '
            'file)')
    return label[:, :, -1]


def convert(args):
    require_dir(args.path, 'SYNTHIA root',
                'pass the folder that holds RGB/ and GT/LABELS/')
    gt_dir = osp.join(args.path, args.gt_dir)
    require_dir(gt_dir, 'label folder',
                'extract SYNTHIA-RAND-CITYSCAPES there or set --gt-dir')
    img_dir = osp.join(args.path, 'RGB')
    if not args.no_size_check:
        require_dir(img_dir, 'image folder',
                    'extract the SYNTHIA images there or pass --no-size-check')
    names = list_files(gt_dir, '.png', exclude_suffix=OUT_SUFFIX)
    if not names:
        raise ConversionError(
            f'no label *.png found in {gt_dir}; check that PATH is the '
            'SYNTHIA-RAND-CITYSCAPES root')
    tasks = label_tasks(names, gt_dir, None if args.no_size_check else img_dir,
                        gt_dir, read_synthia_ids, LUT, out_suffix=OUT_SUFFIX)
    convert_labels(tasks, args.nproc, 'SYNTHIA labels',
                   rcs_out_dir=args.out_dir or args.path)


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
