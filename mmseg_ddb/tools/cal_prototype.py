"""Class prototypes of a Stage-1 (ST) model on the target training set.

    python tools/cal_prototypes/cal_prototype.py CONFIG CHECKPOINT
        [--epochs 4] [--out FILE] [--postfix STR] [--gpu-id 0]

CONFIG is the ST config the checkpoint was trained with; the prototypes come
from its student (``model.*``). Without ``--out`` the file is
``prototypes/<task>_round<r>/<task>_st-<cu|ca>_dlv2.pth`` (from the config's
name), with a ``.log`` of per-class counts next to it.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction

from ..apis import compute_prototypes, default_prototype_path, write_prototypes
from ..utils import check_device, check_gpu_id, load_config, user_errors_to_exit
from ..utils.fileio import atomic_write, check_writable_dir
from .args import add_threads, apply_threads


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Compute class prototypes of an ST model')
    parser.add_argument('config', help='the ST config')
    parser.add_argument('checkpoint', help='the ST checkpoint')
    parser.add_argument('--epochs', type=int, default=4,
                        help='passes over the target set (default 4)')
    parser.add_argument('--out', help='output file (default: derived from '
                        'the config name)')
    parser.add_argument('--postfix', default='',
                        help='added to the default file name')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='default: the config\'s train batch size')
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--gpu-id', type=int, default=0)
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--amp', action='store_true',
                        help='the network in bf16 (fp16 on GPUs without '
                        'bf16); upsampling and means stay fp32')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_threads(parser)
    return parser.parse_args(argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    apply_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    out = args.out or default_prototype_path(args.config, args.postfix)
    device = args.device
    if device is None and torch.cuda.is_available():
        check_gpu_id(args.gpu_id)
        device = f'cuda:{args.gpu_id}'
    check_device(device)
    check_writable_dir(osp.dirname(osp.abspath(out)), 'output folder')
    lines = []

    def log(line):
        print(line)
        lines.append(line)

    estimator = compute_prototypes(
        cfg, args.checkpoint, epochs=args.epochs, batch_size=args.batch_size,
        num_workers=args.num_workers, device=device,
        progress=not args.no_progress, log=log, amp=args.amp)
    write_prototypes(out, estimator, config=args.config,
                     checkpoint=args.checkpoint, epochs=args.epochs,
                     amp=args.amp)
    log_path = osp.splitext(out)[0] + '.log'
    atomic_write(log_path, '\n'.join(lines) + '\n', mode='w')
    print(f'prototypes {tuple(estimator.prototypes.shape)} written to {out}')
    return out


if __name__ == '__main__':
    main()
