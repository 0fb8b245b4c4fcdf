"""Command-line options more than one tool shares."""
import argparse
import os

from mmengine.config import DictAction

from ..errors import ConfigError


def add_cfg_options(parser: argparse.ArgumentParser, example: str = '') -> None:
    """``--cfg-options k=v ...`` (alias ``--options``): override config keys."""
    parser.add_argument(
        '--cfg-options', '--options', nargs='+', action=DictAction,
        help='override config keys' + (f', e.g. {example}' if example else ''))


def add_trust_checkpoint(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: the tools load checkpoints weights-only unless
    the user vouches for the file."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow arbitrary unpickling of the checkpoint '
                        '(only for files you trust)')


def add_launcher(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the ``--local_rank`` that older launchers pass."""
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_with_launcher(parser: argparse.ArgumentParser, argv=None):
    """Parse ``argv``; ``LOCAL_RANK`` from ``--local_rank`` where the launcher
    did not set it (mmengine reads the environment)."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads (intra-op), default torch's own
    choice (one per core, or ``OMP_NUM_THREADS``)."""
    parser.add_argument(
        '--threads', type=int, default=None, metavar='N',
        help='torch CPU threads (default: one per core, or OMP_NUM_THREADS);'
        ' a different count changes the floating-point summation order')


def apply_threads(threads) -> None:
    """Set torch's CPU threads to ``threads`` (None: leave them); a count
    below 1 is refused."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f'--threads {threads}: expected a positive number '
                          'of CPU threads')
    import torch
    torch.set_num_threads(threads)
