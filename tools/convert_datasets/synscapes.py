#!/usr/bin/env python
"""Convert Synscapes labels to Cityscapes train ids and write the RCS statistics.

Layout (METHOD.md section 3)::

    PATH/img/rgb/1.png
    PATH/img/class/1.png                  Cityscapes label ids (8-bit grey)
    PATH/img/class/1_gt_labelTrainIds.png written: train ids 0..18, 255
    PATH/img/class/1_gt_color.png         written: Cityscapes colours
    OUT/sample_class_stats.json, ...      written (OUT defaults to PATH)

Only ``img/class/<digits>.png`` are inputs. Labels whose two outputs exist are
skipped, so an interrupted run can be resumed.
"""
import argparse
import os.path as osp
import re
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

LUT = id_to_train_id_lut()
INPUT_NAME = re.compile(r'^\d+\.png$')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert Synscapes labels (img/class/N.png, Cityscapes '
        'label ids) to N_gt_labelTrainIds.png and N_gt_color.png and write '
        'the rare-class-sampling statistics.')
    parser.add_argument('path', help='Synscapes root, holding img/rgb and '
                        'img/class')
    parser.add_argument('-o', '--out-dir',
                        help='where the RCS json files go (default: PATH)')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    parser.add_argument('--no-size-check', action='store_true',
                        help='do not compare each label with its image size')
    return parser.parse_args(argv)


def convert(args):
    require_dir(args.path, 'Synscapes root',
                'pass the folder that holds img/rgb and img/class')
    class_dir = osp.join(args.path, 'img', 'class')
    require_dir(class_dir, 'label folder',
                'extract the Synscapes archive there')
    rgb_dir = osp.join(args.path, 'img', 'rgb')
    if not args.no_size_check:
        require_dir(rgb_dir, 'image folder',
                    'extract the Synscapes images there or pass '
                    '--no-size-check')
    names = sorted((n for n in list_files(class_dir, '.png')
                    if INPUT_NAME.match(n)), key=lambda n: int(n[:-4]))
    if not names:
        raise ConversionError(
            f'no label <number>.png found in {class_dir}; check that PATH is '
            'the Synscapes root')
    tasks = label_tasks(names, class_dir,
                        None if args.no_size_check else rgb_dir, class_dir,
                        read_label, LUT, out_suffix='_gt_labelTrainIds.png',
                        color_suffix='_gt_color.png')
    convert_labels(tasks, args.nproc, 'Synscapes labels',
                   rcs_out_dir=args.out_dir or args.path)


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
