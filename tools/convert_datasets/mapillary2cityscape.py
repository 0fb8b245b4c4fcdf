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

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmseg_ddb.datasets.conversion import (  # noqa: E402
    CITYSCAPES_CLASSES, IGNORE_INDEX, ConversionError, apply_lut,
    atomic_write_png, check_label_size, fail, list_files,
    mapillary_to_trainid, read_label, require_dir, run_parallel,
    train_id_to_id_lut)

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


def convert_one(task):
    """(label, image or None, output, LUT) -> whether it was written."""
    label_path, image_path, out_path, lut = task
    if osp.exists(out_path):
        return False
    label = read_label(label_path)
    if image_path is not None:
        check_label_size(label_path, label, image_path)
    # values past the table are unmapped classes, like index 255
    atomic_write_png(out_path, apply_lut(label, lut, fill=int(lut[255])))
    return True


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
    tasks = []
    for name in names:
        image = None
        if not args.no_size_check:
            image = osp.join(img_dir, name[:-len('.png')] + '.jpg')
        tasks.append((osp.join(label_dir, name), image,
                      osp.join(out_dir, name), lut))
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
        written = run_parallel(convert_one, tasks, args.nproc,
                               desc=f'Mapillary {split}')
        print(f'{split}: converted {sum(written)} labels, '
              f'{len(written) - sum(written)} already done, in {out_dir}')


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except ConversionError as err:
        return fail(err)
    return 0


if __name__ == '__main__':
    sys.exit(main())
