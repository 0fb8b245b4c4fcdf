"""Train one DDB stage (source-only, ST or CKD) from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                          [--channels-last]
                          [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_train.sh CONFIG NGPUS [args]
"""
import argparse

from ..apis import prepare_train_config, run_training
from ..utils import user_errors_to_exit
from ..utils.fileio import check_writable_dir
from .args import add_cfg_options, add_launcher, add_threads, apply_threads, parse_with_launcher


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
    parser.add_argument('--final-metrics', metavar='JSON',
                        help='write the metrics of the validation after the '
                        'last iteration here, as tools/test.py --metrics-out '
                        'would (fp32, as test.py without --amp); only when '
                        'the config validates on its test set')
    parser.add_argument('--seed', type=int, help='random seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic cuDNN / algorithms')
    parser.add_argument('--gpu-id', type=int, default=None,
                        help='GPU to use when not distributed')
    add_cfg_options(parser, 'train_cfg.max_iters=100')
    add_launcher(parser)
    add_threads(parser)
    return parse_with_launcher(parser, argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    apply_threads(args.threads)
    cfg = prepare_train_config(args)
    check_writable_dir(cfg.work_dir, 'work dir')
    run_training(cfg)


if __name__ == '__main__':
    main()
