"""Write the deployable model of a checkpoint.

    python tools/publish.py CONFIG CHECKPOINT [--out DIR] [--name STEM]
                            [--teacher] [--trust-checkpoint]

From a plain, ST or CKD checkpoint (ours or the original's layout) it writes
``DIR/<STEM>_<YYYYMMDD>-<sha256[:8]>.pth`` holding only the student's weights
(``--teacher``: the EMA teacher of an ST checkpoint) under the plain
segmentor's keys, plus ``meta``, and the config beside it as
``<same stem>.py``. ``tools/test.py`` and ``tools/infer.py`` load the file as
any checkpoint.
"""
import argparse
import os.path as osp

from ..apis.publish import publish
from ..utils import user_errors_to_exit
from .args import add_trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the deployable model (one segmentor\'s weights '
        '+ config) of a checkpoint')
    parser.add_argument('config', help='the config the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='plain, ST or CKD checkpoint')
    parser.add_argument('--out', default='published', help='output folder '
                        '(default: %(default)s)')
    parser.add_argument('--name', help='file name stem (default: the '
                        'config\'s)')
    parser.add_argument('--teacher', action='store_true',
                        help='the EMA teacher of an ST checkpoint instead '
                        'of the student')
    add_trust_checkpoint(parser)
    return parser.parse_args(argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    path, cfg_path = publish(args.config, args.checkpoint, args.out,
                             name=args.name, teacher=args.teacher,
                             trust=args.trust_checkpoint)
    before, after = osp.getsize(args.checkpoint), osp.getsize(path)
    print(f'{path} ({after / 2**20:.2f} MiB, {before / after:.1f}x smaller '
          f'than {args.checkpoint}: {before / 2**20:.2f} MiB)')
    print(f'config: {cfg_path}')
    return path


if __name__ == '__main__':
    main()
