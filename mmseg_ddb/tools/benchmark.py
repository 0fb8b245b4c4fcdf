"""Time a supervised, an ST and a CKD step and inference side by side.

    python tools/benchmark.py CONFIG [--device cpu|cuda] [--iters 10]
        [--warmup 3] [--amp] [--channels-last] [--batch-size N] [--crop N]
        [--loader-data config|synthetic] [--loader-workers N]
        [--out FILE.json]

Reports milliseconds per iteration (median), the ratios ST/supervised and
CKD/supervised, the share of the ST step spent in bridging + augmentation +
EMA, peak memory (CUDA max allocated, or process max RSS on CPU), the data
loader's UDA pairs per second, and on CUDA the achieved TFLOP/s.
"""
import argparse

import torch
from mmengine.config import DictAction

from ..apis import write_json_atomic
from ..apis.benchmark import run_benchmark
from ..errors import ConfigError
from ..utils import load_config, user_errors_to_exit
from .args import add_threads, apply_threads


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Benchmark DDB steps')
    p.add_argument('config')
    p.add_argument('--device', default=None, help='cpu or cuda')
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--amp', action='store_true',
                   help='bf16 autocast (fp16 on GPUs without bf16)')
    p.add_argument('--channels-last', action='store_true',
                   help='models and inputs in channels_last memory format')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--crop', type=int, default=None,
                   help='square crop size (default: the config\'s)')
    p.add_argument('--infer-shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='inference input size (default: the crop), e.g. '
                   '512 1024 for the Cityscapes protocol')
    p.add_argument('--infer-label-shape', type=int, nargs=2,
                   metavar=('H', 'W'), help='size the probabilities are '
                   'resized to before the argmax (default: the input '
                   'size), e.g. 1024 2048')
    p.add_argument('--loader-batches', type=int, default=20,
                   help='batches for the data-loader throughput (0: skip)')
    p.add_argument('--loader-data', choices=('config', 'synthetic'),
                   default='config', help='data for the loader throughput: '
                   "the config's, or synthetic images of the real size in "
                   'the same layout (GTA5 / Cityscapes configs; no dataset '
                   'needed)')
    p.add_argument('--loader-workers', type=int, default=None,
                   help="loader worker processes (default: the config's)")
    add_threads(p)
    p.add_argument('--out', help='write the results as JSON')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    if args.iters <= 0 or args.warmup < 0:
        raise ConfigError('--iters must be > 0 and --warmup >= 0')
    if args.loader_workers is not None and args.loader_workers < 0:
        raise ConfigError('--loader-workers must be >= 0')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError('--device cuda: no CUDA GPU visible')
    apply_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    res = run_benchmark(cfg, device, args.iters, args.warmup, args.amp,
                        args.batch_size, args.crop, args.loader_batches,
                        channels_last=args.channels_last,
                        infer_shape=args.infer_shape,
                        infer_label_shape=args.infer_label_shape,
                        loader_data=args.loader_data,
                        loader_workers=args.loader_workers)
    res['config'] = args.config
    res['torch'] = torch.__version__
    res['threads'] = torch.get_num_threads()
    if device.startswith('cuda'):
        res['gpu'] = torch.cuda.get_device_name()
    for key, value in res.items():
        print(f'{key:<26} {value:.3f}' if isinstance(value, float)
              else f'{key:<26} {value}')
    if args.out:
        write_json_atomic(args.out, res)
    return res


if __name__ == '__main__':
    main()
