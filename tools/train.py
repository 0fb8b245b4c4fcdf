"""Train one DDB stage (source-only, ST or CKD) from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                          [--channels-last]
                          [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_train.sh CONFIG NGPUS [args]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmseg_ddb  # noqa: E402,F401  (glue + registries before mmseg)
from mmengine.config import DictAction  # noqa: E402

from mmseg_ddb.apis import prepare_train_config, run_training  # noqa: E402
from mmseg_ddb.utils import user_errors_to_exit  # noqa: E402
from mmseg_ddb.utils.fileio import check_writable_dir  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a DDB stage')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', '--auto-resume', action='store_true', dest='resume',
        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--resume-from', help='resume from this checkpoint')
    parser.add_argument('--load-from', help='initialise from these weights '
                        '(no optimizer / iteration state)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 autocast (fp16 with loss '
                        'scaling on GPUs without bf16)')
    parser.add_argument('--channels-last', action='store_true',
                        help='weights and inputs in channels_last memory '
                        'format (faster convolutions on many GPUs, with '
                        '--amp above all; measure with tools/benchmark.py)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--seed', type=int, help='random seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic cuDNN / algorithms')
    parser.add_argument('--gpu-id', type=int, default=None,
                        help='GPU to use when not distributed')
    parser.add_argument(
        '--cfg-options', '--options', nargs='+', action=DictAction,
        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    cfg = prepare_train_config(args)
    check_writable_dir(cfg.work_dir, 'work dir')
    run_training(cfg)


if __name__ == '__main__':
    main()
