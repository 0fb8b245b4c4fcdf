"""Export a config's segmentor to ONNX and check it against onnxruntime.

    python tools/export_onnx.py CONFIG [CHECKPOINT] --out model.onnx
                                [--shape H W] [--argmax] [--no-dynamic]
                                [--atol 1e-3] [--max-label-diff 0.001]
                                [--speed N] [--threads N]

CHECKPOINT: any checkpoint ``tools/test.py`` reads (the student of ST / CKD,
a published file, ...); without one the network keeps its random init (for
timing). The graph takes ``image`` float32 [N, 3, H, W], BGR, 0..255 (what
``cv2.imread`` gives), does the preprocessing, and returns ``logits``
[N, K, H, W] (``--argmax``: ``label`` [N, H, W], int64), opset 17. The file
is checked with ``onnx.checker`` and run by onnxruntime on the same images
as PyTorch; the largest logit difference and the share of pixels whose label
differs are printed, and past ``--atol`` / ``--max-label-diff`` it fails
and writes nothing. ``tools/test.py CONFIG model.onnx`` evaluates the file.
``--speed N``: images/s of PyTorch fp32, PyTorch bf16 and onnxruntime at
batch 1, N images each, side by side.
"""
import argparse
import os.path as osp

import torch
from mmengine.logging import MMLogger

from ..apis import init_segmentor
from ..apis.onnx_export import LABEL_DIFF_MAX, LOGIT_ATOL, export_onnx
from ..apis.onnx_runtime import backend_speeds
from ..errors import ConfigError
from ..utils import load_config, user_errors_to_exit
from ..utils.fileio import write_json_atomic
from .args import add_cfg_options, add_trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX, checked by onnxruntime')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: '
                        'none, the random init)')
    parser.add_argument('--out', help='the .onnx file (default: '
                        '<config name>.onnx)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='export (and check) size (default: the test '
                        'resize of the config, else its crop size)')
    parser.add_argument('--argmax', action='store_true',
                        help='output the train-id map instead of logits')
    parser.add_argument('--no-dynamic', action='store_true',
                        help='fixed batch and size (default: dynamic where '
                        'onnxruntime reproduces PyTorch)')
    parser.add_argument('--atol', type=float, default=LOGIT_ATOL,
                        help='largest |logit difference| allowed '
                        '(default: %(default)g)')
    parser.add_argument('--max-label-diff', type=float,
                        default=LABEL_DIFF_MAX, help='largest share of '
                        'pixels whose label may differ (default: '
                        '%(default)g)')
    parser.add_argument('--speed', type=int, default=0, metavar='N',
                        help='then time N images (batch 1) through PyTorch '
                        'fp32, bf16 and onnxruntime')
    parser.add_argument('--threads', type=int, default=0,
                        help='CPU threads of PyTorch and onnxruntime '
                        '(default: their own defaults)')
    parser.add_argument('--json', help='write the check (and speed) '
                        'results to this JSON file')
    add_trust_checkpoint(parser)
    add_cfg_options(parser)
    return parser.parse_args(argv)


def default_shape(cfg) -> tuple:
    """(H, W): the test pipeline's resize scale, else the crop size."""
    dataset = cfg.test_dataloader.dataset
    while 'datasets' in dataset:
        dataset = dataset.datasets[0]
    for step in dataset.get('pipeline', []):
        if 'Resize' in str(step.get('type')) and step.get('scale'):
            w, h = step['scale']
            return h, w
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size:
        return tuple(size)
    raise ConfigError('the config has neither a test resize nor a crop '
                      'size: give --shape H W')


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    height, width = args.shape or default_shape(cfg)
    if min(height, width) < 1 or args.speed < 0:
        raise ConfigError('--shape and --speed must be positive')
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or osp.splitext(osp.basename(args.config))[0] + '.onnx'
    model = init_segmentor(cfg, args.checkpoint, 'cpu',
                           trust=args.trust_checkpoint)
    if not args.checkpoint:
        # the network's own init scheme (Kaiming, truncated normal, ...), not
        # torch's layer defaults, whose activations vanish over a deep
        # network: tiny (denormal) values are far slower on a CPU
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')  # no per-parameter init report
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
        print('no checkpoint: exporting the random init (for timing)')
    info = export_onnx(
        model, out, height, width, argmax=args.argmax,
        dynamic=not args.no_dynamic, atol=args.atol,
        label_diff_max=args.max_label_diff,
        metadata=dict(config=osp.basename(args.config),
                      checkpoint=osp.basename(args.checkpoint or 'none')))
    print(f'{out}: opset {info["opset"]}, dynamic axes: '
          f'{", ".join(info["dynamic_axes"]) or "none"} (exported at '
          f'{height}x{width})')
    print(f'onnxruntime vs PyTorch: max |logit diff| '
          f'{info["max_logit_diff"]:.3g}, pixels with another label '
          f'{info["label_diff"]:.4%}')
    if args.speed:
        if args.argmax:
            raise ConfigError('--speed times the logits export: drop '
                              '--argmax')
        info['speed'] = backend_speeds(model, out, height, width,
                                       args.speed, args.threads)
        info['speed_shape'] = [height, width]
        print(f'images/s at {height}x{width}, batch 1: ' + ', '.join(
            f'{k} {v:.3f}' for k, v in info['speed'].items()))
    if args.json:
        write_json_atomic(args.json, info)
    return info


if __name__ == '__main__':
    main()
