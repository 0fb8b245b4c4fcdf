#!/usr/bin/env python
"""Convert GTA5 labels to Cityscapes train ids and write the RCS statistics.

Layout (METHOD.md section 3)::

    PATH/images/00001.png
    PATH/labels/00001.png                 Cityscapes label ids (palette PNG)
    PATH/labels/00001_labelTrainIds.png   written: train ids 0..18, 255
    OUT/sample_class_stats.json, sample_class_stats_dict.json,
        samples_with_class.json           written (OUT defaults to PATH)

Labels whose output exists are skipped, so an interrupted run can be resumed.
"""
import argparse
import os.path as osp
import sys

from mmseg_ddb.convert import (
    ConversionError,
    convert_labels,
    id_to_train_id_lut,
    label_tasks,
    list_files,
    read_label,
    require_dir,
    run_tool,
)

OUT_SUFFIX = '_labelTrainIds.png'
LUT = id_to_train_id_lut()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert GTA5 labels (Cityscapes label ids) to '
        '*_labelTrainIds.png and write the rare-class-sampling statistics.')
    parser.add_argument('path', help='GTA5 root, holding images/ and labels/')
    parser.add_argument('--gt-dir', default='labels',
                        help='label folder under PATH (default: labels)')
    parser.add_argument('-o', '--out-dir',
                        help='where the RCS json files go (default: PATH)')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    parser.add_argument('--no-size-check', action='store_true',
                        help='do not compare each label with its image size')
    return parser.parse_args(argv)


def convert(args):
    require_dir(args.path, 'GTA5 root',
                'pass the folder that holds images/ and labels/')
    gt_dir = osp.join(args.path, args.gt_dir)
    require_dir(gt_dir, 'label folder',
                'extract the GTA5 labels there or set --gt-dir')
    img_dir = osp.join(args.path, 'images')
    if not args.no_size_check:
        require_dir(img_dir, 'image folder',
                    'extract the GTA5 images there or pass --no-size-check')
    names = list_files(gt_dir, '.png', exclude_suffix=OUT_SUFFIX)
    if not names:
        raise ConversionError(
            f'no label *.png found in {gt_dir}; check that PATH is the GTA5 '
            'root and the labels are extracted')
    tasks = label_tasks(names, gt_dir, None if args.no_size_check else img_dir,
                        gt_dir, read_label, LUT, out_suffix=OUT_SUFFIX)
    convert_labels(tasks, args.nproc, 'GTA5 labels',
                   rcs_out_dir=args.out_dir or args.path)


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
