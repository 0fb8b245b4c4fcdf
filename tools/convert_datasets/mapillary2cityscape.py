#!/usr/bin/env python
"""Map Mapillary Vistas labels onto the 19 Cityscapes classes.

Layout (METHOD.md section 3)::

    ORI/config.json                    {"labels": [{"readable": ...}, ...]}
    ORI/{training,validation}/images/X.jpg
    ORI/{training,validation}/labels/X.png      class indices (palette PNG)
    SAVE/cityscapes_trainIdLabel/{train,val}/label/X.png   with --train_id
    SAVE/cityscapes_IdLabel/{train,val}/label/X.png        without it

Classes are mapped by their readable name (see ``mapillary_to_trainid``); the
full table is printed. Without ``--train_id`` the Cityscapes *label id* of the
mapped class is written (0 = unlabeled for unmapped classes). The v2.0 package
layout (``config_v1.2.json``, ``training/v1.2/labels``) is found as well.
Labels whose output exists are skipped, so an interrupted run can be resumed.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmseg_ddb.convert import (
    CITYSCAPES_CLASSES,
    IGNORE_INDEX,
    ConversionError,
    convert_labels,
    count_summary,
    label_tasks,
    list_files,
    mapillary_to_trainid,
    read_label,
    require_dir,
    run_tool,
    train_id_to_id_lut,
)

__all__ = ['mapillary_to_trainid', 'main']

SPLITS = (('training', 'train'), ('validation', 'val'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Map Mapillary Vistas labels to the 19 Cityscapes classes '
        '(by readable class name).')
    parser.add_argument('ori', help='Mapillary root, holding config.json, '
                        'training/ and validation/')
    parser.add_argument('save', help='output root (may be ORI)')
    parser.add_argument('--version', default='v1.2',
                        help='Mapillary version whose config and labels to '
                        'use (default: v1.2)')
    parser.add_argument('--train_id', action='store_true',
                        help='write train ids to cityscapes_trainIdLabel/ '
                        '(what DDB trains on) instead of Cityscapes label ids '
                        'to cityscapes_IdLabel/')
    parser.add_argument('--nproc', default=4, type=int,
                        help='worker processes (default: 4)')
    parser.add_argument('--no-size-check', action='store_true',
                        help='do not compare each label with its image size')
    return parser.parse_args(argv)


def _first_existing(paths):
    return next((p for p in paths if osp.exists(p)), None)


def read_readable_names(ori, version):
    """The ``readable`` names of the classes, in class-index order."""
    candidates = [osp.join(ori, f'config_{version}.json'),
                  osp.join(ori, 'config.json')]
    path = _first_existing(candidates)
    if path is None:
        raise ConversionError(
            f'{candidates[1]} not found; pass the Mapillary Vistas root that '
            'holds config.json')
    try:
        with open(path) as f:
            return [entry['readable'] for entry in json.load(f)['labels']]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConversionError(
            f'{path} is not a Mapillary config ({type(exc).__name__}: {exc}); '
            'restore the original config.json') from None


def format_table(names, lut):
    lines = ['Mapillary class -> Cityscapes train id:']
    for i, name in enumerate(names):
        t = int(lut[i])
        target = CITYSCAPES_CLASSES[t] if t != IGNORE_INDEX else 'ignored'
        lines.append(f'  {i:3d} {name:<32} -> {t:3d} {target}')
    return '\n'.join(lines)


def split_tasks(args, split, out_split, lut):
    label_dir = _first_existing([
        osp.join(args.ori, split, args.version, 'labels'),
        osp.join(args.ori, split, 'labels')])
    if label_dir is None:
        raise ConversionError(
            f'label folder {osp.join(args.ori, split, "labels")} does not '
            'exist; extract Mapillary Vistas there')
    img_dir = osp.join(args.ori, split, 'images')
    if not args.no_size_check:
        require_dir(img_dir, 'image folder',
                    'extract the Mapillary images there or pass '
                    '--no-size-check')
    names = list_files(label_dir, '.png')
    if not names:
        raise ConversionError(
            f'no label *.png found in {label_dir}; check the Mapillary '
            'extraction')
    kind = 'cityscapes_trainIdLabel' if args.train_id else 'cityscapes_IdLabel'
    out_dir = osp.join(args.save, kind, out_split, 'label')
    os.makedirs(out_dir, exist_ok=True)
    # values past the table are unmapped classes, like index 255
    tasks = label_tasks(names, label_dir,
                        None if args.no_size_check else img_dir, out_dir,
                        read_label, lut, out_suffix='.png',
                        image_suffix='.jpg', fill=int(lut[255]))
    return tasks, out_dir


def convert(args):
    require_dir(args.ori, 'Mapillary root',
                'pass the folder that holds config.json, training/ and '
                'validation/')
    names = read_readable_names(args.ori, args.version)
    train_id_lut = mapillary_to_trainid(names)
    print(format_table(names, train_id_lut))
    lut = train_id_lut
    if not args.train_id:
        lut = train_id_to_id_lut(fill=0)[train_id_lut]
    jobs = [split_tasks(args, split, out_split, lut)
            for split, out_split in SPLITS]
    for (split, _), (tasks, out_dir) in zip(SPLITS, jobs):
        written = convert_labels(tasks, args.nproc, f'Mapillary {split}')
        print(f'{split}: {count_summary(written)}, in {out_dir}')


def main(argv=None):
    return run_tool(convert, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
