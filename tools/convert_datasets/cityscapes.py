#!/usr/bin/env python
"""Rasterise the Cityscapes polygons into train-id labels and write split lists.

Layout (METHOD.md section 3)::

    PATH/gtFine/{train,val,test}/<city>/<stem>_gtFine_polygons.json
    PATH/gtFine/{train,val,test}/<city>/<stem>_gtFine_labelTrainIds.png  written
    OUT/{train,val,test}.txt      written for each split folder that exists,
                                  one ``<city>/<stem>`` per line (OUT defaults
                                  to PATH)

The rasterisation is cityscapesscripts' ``json2labelImg(..., 'trainIds')``.
Labels whose output exists are skipped, so an interrupted run can be resumed.
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import sys

from cityscapesscripts.preparation.json2labelImg import json2labelImg

from mmseg_ddb.convert import (
    ConversionError,
    atomic_save,
    atomic_write_lines,
    count_summary,
    require_dir,
    run_parallel,
    run_tool,
)

IN_SUFFIX = '_polygons.json'
OUT_SUFFIX = '_labelTrainIds.png'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert Cityscapes *_polygons.json to '
        '*_labelTrainIds.png (cityscapesscripts json2labelImg) and write '
        '{train,val,test}.txt split lists.')
    parser.add_argument('path', help='Cityscapes root, holding gtFine/ '
                        '(and leftImg8bit/)')
    parser.add_argument('--gt-dir', default='gtFine',
                        help='annotation folder under PATH (default: gtFine)')
    parser.add_argument('-o', '--out-dir',
                        help='where the split lists go (default: PATH)')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    parser.add_argument('--split-names', nargs='+',
                        default=['train', 'val', 'test'],
                        help='split folders to list in <split>.txt '
                        '(default: train val test)')
    return parser.parse_args(argv)


def find_polygons(gt_dir):
    """Sorted paths of every ``*_polygons.json`` under ``gt_dir``."""
    found = []
    for dirpath, dirnames, files in os.walk(gt_dir, followlinks=True):
        dirnames.sort()
        found += [osp.join(dirpath, f) for f in files
                  if f.endswith(IN_SUFFIX) and not f.startswith('.')]
    return sorted(found)


def _rasterise(json_path, tmp_path):
    """json2labelImg into ``tmp_path``, its errors turned into ConversionError."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            json2labelImg(json_path, tmp_path, 'trainIds')
    except SystemExit:  # json2labelImg exits on an unknown label name
        lines = [line for line in printed.getvalue().splitlines() if line]
        reason = lines[0] if lines else 'json2labelImg failed'
        raise ConversionError(
            f'cannot convert {json_path} ({reason}); fix or remove that '
            'annotation') from None
    except Exception as exc:
        raise ConversionError(
            f'cannot convert {json_path} ({type(exc).__name__}: {exc}); '
            're-download or re-extract it') from None


def convert_one(json_path):
    """One polygon file -> its train-id label; returns whether it was written."""
    out_path = json_path[:-len(IN_SUFFIX)] + OUT_SUFFIX
    if osp.exists(out_path):
        return False
    atomic_save(out_path, lambda tmp: _rasterise(json_path, tmp))
    return True


def split_stems(split_dir):
    """``<city>/<stem>`` of each polygon file under a split folder, sorted."""
    stems = []
    for path in find_polygons(split_dir):
        rel = osp.relpath(path, split_dir)[:-len(IN_SUFFIX)]
        stems.append(rel.rsplit('_', 1)[0].replace(os.sep, '/'))
    return stems


def convert(args):
    require_dir(args.path, 'Cityscapes root',
                'pass the folder that holds gtFine/')
    gt_dir = osp.join(args.path, args.gt_dir)
    require_dir(gt_dir, 'annotation folder',
                'extract gtFine_trainvaltest.zip there or set --gt-dir')
    polygons = find_polygons(gt_dir)
    if not polygons:
        raise ConversionError(
            f'no *{IN_SUFFIX} found under {gt_dir}; check that PATH is the '
            'Cityscapes root')
    written = run_parallel(convert_one, polygons, args.nproc,
                           desc='Cityscapes labels')
    out_dir = args.out_dir or args.path
    os.makedirs(out_dir, exist_ok=True)
    lists = []
    for split in args.split_names:
        split_dir = osp.join(gt_dir, split)
        if osp.isdir(split_dir):
            atomic_write_lines(osp.join(out_dir, f'{split}.txt'),
                               split_stems(split_dir))
            lists.append(f'{split}.txt')
    print(f'{count_summary(written)}; split lists '
          f'{", ".join(lists) or "(none)"} in {out_dir}')


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
