"""Evaluate a checkpoint (plain, ST, CKD, ours or the original's), or an
exported ``.onnx`` file through onnxruntime (``tools/export_onnx.py``).

    python tools/test.py CONFIG CHECKPOINT --eval mIoU [--metrics-out m.json]
                         [--show-dir DIR] [--out DIR] [--plot-dir DIR]
                         [--mode whole|slide] [--aug-test] [--amp]
                         [--cfg-options k=v ...]

Default protocol (METHOD.md 3): the whole image at the config's test size
(1024x512 for Cityscapes), single scale. ``--mode slide``: full resolution,
sliding window. ``--aug-test``: flip + multi-scale, probabilities averaged.
"""
import argparse
import os

import torch

from ..apis import (
    SUPPORTED_METRICS,
    evaluate,
    metrics_record,
    prepare_test_config,
    release_process_group,
    write_json_atomic,
)
from ..apis.test import DEFAULT_AUG_SCALES, DEFAULT_SLIDE_CROP, DEFAULT_SLIDE_STRIDE
from ..errors import ConfigError
from ..utils import check_gpu_id, user_errors_to_exit
from .args import (
    add_cfg_options,
    add_launcher,
    add_threads,
    add_trust_checkpoint,
    apply_threads,
    parse_with_launcher,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a DDB checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or an .onnx '
                        'export (run by onnxruntime, pip install -e '
                        '".[deploy]")')
    parser.add_argument('--eval', nargs='+', default=['mIoU'],
                        help='metrics to compute (mIoU)')
    parser.add_argument('--metrics-out', help='write the metrics to this '
                        'JSON file: {"mIoU": .., "per_class": {name: IoU}}')
    parser.add_argument('--work-dir', help='where logs go')
    parser.add_argument('--show-dir', help='save painted predictions here')
    parser.add_argument('--out', help='write each prediction as a train-id '
                        'PNG (<image stem>.png) into this folder')
    parser.add_argument('--plot-dir', help='write the confusion matrix '
                        '(row-normalised PNG + raw counts .npy) here, one '
                        'per target set')
    parser.add_argument('--mode', choices=['whole', 'slide'], default='whole',
                        help='whole: the image at the config\'s test size '
                        '(default, the paper\'s protocol); slide: full '
                        'resolution, sliding window')
    parser.add_argument('--slide-crop', type=int, nargs=2,
                        default=list(DEFAULT_SLIDE_CROP), metavar=('H', 'W'),
                        help='window of --mode slide (default: %(default)s)')
    parser.add_argument('--slide-stride', type=int, nargs=2,
                        default=list(DEFAULT_SLIDE_STRIDE),
                        metavar=('H', 'W'),
                        help='stride of --mode slide (default: %(default)s)')
    parser.add_argument('--aug-test', action='store_true',
                        help='flip + multi-scale test-time augmentation')
    parser.add_argument('--aug-scales', type=float, nargs='+',
                        default=list(DEFAULT_AUG_SCALES),
                        help='--aug-test scale ratios (default: %(default)s)')
    parser.add_argument('--no-aug-flip', action='store_true',
                        help='--aug-test without the flipped views')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per test batch (default: the '
                        'config\'s, 1)')
    parser.add_argument('--amp', action='store_true',
                        help='run the network in bf16 (fp16 on GPUs without '
                        'bf16); softmax and metric stay fp32')
    parser.add_argument('--channels-last', action='store_true',
                        help='weights and inputs in channels_last memory '
                        'format (faster on many GPUs, with --amp above all)')
    add_trust_checkpoint(parser)
    parser.add_argument('--gpu-id', type=int, default=None)
    add_cfg_options(parser)
    add_launcher(parser)
    add_threads(parser)
    return parse_with_launcher(parser, argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    apply_threads(args.threads)
    unknown = [m for m in args.eval if m not in SUPPORTED_METRICS]
    if unknown:
        raise ConfigError(f'--eval {" ".join(unknown)}: not supported; use '
                          f'{", ".join(SUPPORTED_METRICS)}')
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ConfigError(f'--batch-size {args.batch_size}: must be >= 1')
        args.cfg_options = dict(args.cfg_options or {})
        args.cfg_options['test_dataloader.batch_size'] = args.batch_size
    cfg = prepare_test_config(
        args.config, args.cfg_options, args.work_dir, args.launcher,
        args.show_dir, amp=args.amp, out_dir=args.out,
        channels_last=args.channels_last,
        plot_dir=args.plot_dir, mode=args.mode, slide_crop=args.slide_crop,
        slide_stride=args.slide_stride, aug_test=args.aug_test,
        aug_scales=args.aug_scales, aug_flip=not args.no_aug_flip)
    if args.gpu_id is not None:
        check_gpu_id(args.gpu_id)
        torch.cuda.set_device(args.gpu_id)
    try:
        metrics = evaluate(cfg, args.checkpoint, trust=args.trust_checkpoint)
    finally:
        release_process_group()
    if int(os.environ.get('RANK', '0')) != 0:
        return None  # every rank has the metrics; rank 0 reports them
    record = metrics_record(metrics)
    record.update(config=args.config, checkpoint=args.checkpoint)
    means = {k: v for k, v in record.items()
             if k.startswith(('mIoU', 'mAcc', 'aAcc')) or '/mIoU' in k}
    print(' '.join(f'{k}: {"nan" if v is None else format(v, ".2f")}'
                   for k, v in means.items()))
    if args.metrics_out:
        write_json_atomic(args.metrics_out, record)
    return record


if __name__ == '__main__':
    main()
