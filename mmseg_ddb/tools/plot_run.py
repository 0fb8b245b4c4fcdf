"""Plot the curves of one or several training runs to one PNG.

    python tools/plot_run.py WORK_DIR [WORK_DIR ...] [--out curves.png]
                             [--labels NAME ...]

Panels: the total loss and every loss term, the ST quality weight, the
learning rate and val mIoU against iterations, one line per run, from the
JSON logs mmengine writes in each work dir (a resumed run's logs are joined).
E.g. the two ST stages of a pipeline:
``python tools/plot_run.py work_dirs/ddb_synthetic/r1_st_cu work_dirs/ddb_synthetic/r1_st_ca``.
"""
import argparse
import os.path as osp

from ..errors import ConfigError
from ..evaluation.curves import plot_runs
from ..utils import user_errors_to_exit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot the curves of training runs')
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dir of a training run (tools/train.py --work-dir)')
    parser.add_argument('--out', help='the PNG to write (default: curves.png in the '
                        'work dir, or in the folder that holds all of them)')
    parser.add_argument('--labels', nargs='+', help='a legend name per run (default: '
                        'the work dirs\' folder names)')
    return parser.parse_args(argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    if args.labels and len(args.labels) != len(args.work_dirs):
        raise ConfigError(f'--labels: {len(args.labels)} names for '
                          f'{len(args.work_dirs)} work dirs')
    out = args.out or osp.join(
        osp.commonpath([osp.abspath(d) for d in args.work_dirs]), 'curves.png')
    print(plot_runs(args.work_dirs, out, args.labels))


if __name__ == '__main__':
    main()
