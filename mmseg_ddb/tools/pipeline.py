"""The whole multi-round DDB schedule in one command, resumable.

    python tools/ddb_pipeline.py PIPELINE_CONFIG [--work-dir DIR] [--gpus N]
        [--from STAGE] [--only STAGE] [--dry-run] [--launcher slurm]
        [--no-oracle] [--seeds S [S ...]]
        [--ablate KEY=VALUE|ABLATIONS.py [...] [--ablate-stages STAGE ...]
         [--no-downstream]]

Round 1: ST-cu and ST-ca, their prototypes, CKD; round 2: the same, the ST
models starting from the round-1 CKD student. Each stage's checkpoint,
prototypes, metrics and log land in WORK_DIR/<stage>/; WORK_DIR/manifest.json
records status, inputs and outputs (with checksums) and metrics; rerunning
the same command skips finished stages and resumes an interrupted one.
WORK_DIR/summary.json and summary.png report each stage's target mIoU, the
share of the reference -> oracle gap it closes and its per-class IoU.

With ``--seeds 0 1 2`` the whole schedule runs once per seed into
WORK_DIR/seed0/, WORK_DIR/seed1/, ... (each a complete pipeline work dir,
every training stage given ``--seed``); WORK_DIR/summary.json and
summary.png then report the mean and spread over the seeds.

With ``--ablate uda.renormalize=True`` (or an ablation config listing
several) the stages a switch touches rerun, from a finished WORK_DIR (per
seed with ``--seeds``), into WORK_DIR/ablations/<switch>/, reusing every
stage it does not touch; WORK_DIR/ablations/summary.{json,md} give each
stage's mIoU mean and std, its difference from the default run per seed and
the pseudo-label mIoU (see :mod:`mmseg_ddb.pipeline.ablate`); with
``--no-downstream`` the later stages that read a switched stage do not
rerun.
"""
import argparse

from ..errors import ConfigError
from ..pipeline import PipelineRunner, run_seeds
from ..pipeline.ablate import load_ablations, run_ablations
from ..utils import user_errors_to_exit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run the multi-round DDB pipeline')
    parser.add_argument('config', help='pipeline config, e.g. '
                        'configs/synthetic/ddb_synthetic.py')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs per training stage (DDP via torchrun '
                        'when > 1)')
    parser.add_argument('--parallel-paths', action='store_true',
                        help='train the two ST paths of a round (each with '
                        'its prototype pass) side by side, each on half of '
                        'the GPUs; without a GPU on half of the CPU threads, '
                        'with the reference and oracle beside the first CKD '
                        '(other floating-point results than one at a time)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='slurm: each training stage '
                        'runs through srun inside your allocation')
    parser.add_argument('--from', dest='start', metavar='STAGE',
                        help='rerun from this stage on')
    parser.add_argument('--only', metavar='STAGE',
                        help='run just this stage (its inputs must exist)')
    parser.add_argument('--amp', action='store_true',
                        help='bf16 mixed precision for every training, '
                        'prototype and test stage (fp16 on GPUs without '
                        'bf16)')
    parser.add_argument('--channels-last', action='store_true',
                        help='train and test in channels_last memory format '
                        '(speed only: not part of the stage signatures)')
    parser.add_argument('--no-oracle', dest='oracle', action='store_false',
                        help='skip the config\'s oracle stage (trained on '
                        'the target labels)')
    parser.add_argument('--seeds', type=int, nargs='+', metavar='S',
                        help='run the whole schedule once per seed, into '
                        'WORK_DIR/seed<S>/ (--seed S for every training '
                        'stage), and summarise over the seeds')
    parser.add_argument('--ablate', nargs='+', metavar='KEY=VALUE',
                        help='rerun the stages each switch touches (or an '
                        'ablation config file listing several) from the '
                        'finished work dir, into WORK_DIR/ablations/')
    parser.add_argument('--ablate-stages', nargs='+', metavar='STAGE',
                        help='the stages --ablate sets its switch on '
                        '(default: every adaptation stage whose config has '
                        'the key); later stages rerun as their inputs change')
    parser.add_argument('--no-downstream', dest='downstream',
                        action='store_false',
                        help='with --ablate: rerun only the switched stages, '
                        'not the later stages that read them (the finished '
                        'work dir then needs only those stages and their '
                        'inputs)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the stage plan with inputs and outputs')
    parser.add_argument('--verbose', action='store_true',
                        help='stream every stage\'s log')
    return parser.parse_args(argv)


@user_errors_to_exit
def main(argv=None):
    args = parse_args(argv)
    if args.start and args.only:
        raise ConfigError('--from and --only exclude each other')
    if args.ablate_stages and not args.ablate:
        raise ConfigError('--ablate-stages needs --ablate')
    if not args.downstream and not args.ablate:
        raise ConfigError('--no-downstream needs --ablate')
    if args.ablate and (args.start or args.only or args.dry_run):
        raise ConfigError('--ablate runs from a finished work dir: without '
                          '--from, --only or --dry-run')
    if args.gpus > 0:
        import torch
        if torch.cuda.is_available() and \
                args.gpus > torch.cuda.device_count():
            raise ConfigError(f'--gpus {args.gpus}: only '
                              f'{torch.cuda.device_count()} GPU(s) visible')
        if not torch.cuda.is_available() and args.gpus > 1 and \
                args.launcher != 'slurm':
            print(f'note: no GPU; {args.gpus} processes per training stage '
                  'run on the CPU (gloo)')
    runner_args = dict(gpus=args.gpus, launcher=args.launcher,
                       parallel_paths=args.parallel_paths,
                       verbose=args.verbose, amp=args.amp,
                       channels_last=args.channels_last, oracle=args.oracle)
    if args.ablate:
        return run_ablations(args.config, args.work_dir,
                             load_ablations(args.ablate), seeds=args.seeds,
                             stages=args.ablate_stages,
                             downstream=args.downstream, **runner_args)
    if args.seeds:
        return run_seeds(args.config, args.work_dir, args.seeds,
                         start=args.start, only=args.only,
                         dry_run=args.dry_run, **runner_args)
    runner = PipelineRunner(args.config, args.work_dir, **runner_args)
    if args.dry_run:
        print('\n'.join(runner.plan_lines()))
        return None
    return runner.run(start=args.start, only=args.only)


if __name__ == '__main__':
    main()
