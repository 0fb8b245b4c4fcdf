"""Config preparation and launch shared by ``tools/train.py`` and the pipeline."""
import copy
import gc
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from ..engine.runner import DDBRunner
from ..errors import ConfigError
from ..utils import (
    check_gpu_id,
    check_state_dict,
    load_config,
    load_weights_file,
    state_dict_of,
    sync_bn_to_bn,
    use_channels_last,
)


def shared_gpus(distributed: bool) -> int:
    """The number of GPUs when this node runs more ranks than it has GPUs
    (torchrun's ``LOCAL_WORLD_SIZE``), else 0. Such ranks share the GPUs
    round-robin and talk through gloo (NCCL refuses two ranks on one GPU): a
    way to run DDP on a one-GPU machine, e.g. in ``tools/gpu_check.sh``."""
    if not (distributed and torch.cuda.is_available()):
        return 0
    count = torch.cuda.device_count()
    local = int(os.environ.get('LOCAL_WORLD_SIZE', '0') or 0)
    return count if local > count else 0


def exact_evaluation_samplers(cfg: Config) -> None:
    """Validation and test samplers that give each image to one rank once:
    mmengine's ``DefaultSampler`` pads the last round with repeats
    (``round_up=True``), and the summed confusion matrix would count them."""
    for key in ('val_dataloader', 'test_dataloader'):
        sampler = (cfg.get(key) or {}).get('sampler')
        if isinstance(sampler, dict) and str(sampler.get('type', '')) \
                .split('.')[-1] == 'DefaultSampler':
            sampler['round_up'] = False


def adapt_to_device(cfg: Config, distributed: bool) -> None:
    """Make a GPU config run where it is launched.

    * SyncBN becomes BN unless the run is distributed on GPUs (SyncBN needs
      both; mmengine reverts it when not distributed anyway).
    * Distributed on CPU: the gloo backend, and DDP without ``device_ids``;
      more ranks than GPUs: gloo, and each rank on GPU ``LOCAL_RANK % n``
      (:func:`shared_gpus`).
    * With CUDA, the data loaders pin their batches in page-locked memory,
      so the preprocessor's non-blocking copies overlap with compute.
    * Validation and test visit each image once on any number of ranks
      (:func:`exact_evaluation_samplers`).
    """
    cuda = torch.cuda.is_available()
    shared = shared_gpus(distributed)
    if not (cuda and distributed) or shared:
        sync_bn_to_bn(cfg.get('model', {}))
    if distributed and (not cuda or shared):
        env_cfg = dict(cfg.get('env_cfg') or {})
        env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {},
                                   backend='gloo')
        cfg.env_cfg = env_cfg
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper['device_ids'] = [int(os.environ.get('LOCAL_RANK', '0')) %
                                 shared] if shared else None
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    if cuda:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(key):
                cfg[key].setdefault('pin_memory', True)
    exact_evaluation_samplers(cfg)


def use_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision (``AutoAmpOptimWrapper``
    of :mod:`mmseg_ddb.engine.optim`): bf16 autocast without loss scaling on
    CPUs and GPUs with native bf16, fp16 with a dynamic loss scale on older
    GPUs, chosen when the runner builds it on the rank's own GPU."""
    ow = cfg.optim_wrapper
    if ow.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'BF16OptimWrapper',
                                          'AutoAmpOptimWrapper'):
        return
    ow['type'] = 'AutoAmpOptimWrapper'


def wrap_uda(cfg: Config) -> None:
    """A config with a ``uda`` dict trains that UDA segmentor around
    ``cfg.model`` (the original's layout: ``model`` stays the plain segmentor
    that ``tools/test.py`` evaluates)."""
    uda = cfg.get('uda')
    if not uda:
        return
    uda = dict(uda)
    uda['segmentor'] = cfg.model
    cfg.model = uda
    cfg.uda = None


def prepare_train_config(args) -> Config:
    """Apply the command line of ``tools/train.py`` to its config."""
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    if args.amp:
        use_amp(cfg)
    if getattr(args, 'channels_last', False):
        use_channels_last(cfg.model)
    if args.resume_from:
        if not osp.isfile(args.resume_from):
            raise ConfigError(f'--resume-from: {args.resume_from} not found')
        cfg.resume = True
        cfg.load_from = args.resume_from
    else:
        cfg.resume = bool(args.resume)
        if args.load_from:
            if not osp.isfile(args.load_from):
                raise ConfigError(f'--load-from: {args.load_from} not found')
            cfg.load_from = args.load_from
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness['deterministic'] = bool(args.deterministic)
        cfg.randomness = randomness
    if getattr(args, 'final_metrics', None):
        add_final_metrics(cfg, args.final_metrics, args.config)
    check_schedule(cfg)
    wrap_uda(cfg)
    adapt_to_device(cfg, distributed=args.launcher != 'none')
    if cfg.get('load_from') and not cfg.get('resume'):
        check_load_from(cfg, trust=getattr(args, 'trust_checkpoint', False))
    if getattr(args, 'gpu_id', None) is not None:
        check_gpu_id(args.gpu_id)
        torch.cuda.set_device(args.gpu_id)
    return cfg


def add_final_metrics(cfg: Config, out: str, config: str) -> bool:
    """Add :class:`~mmseg_ddb.engine.FinalMetricsHook` writing the last
    validation's metrics to ``out``, when that validation is the config's
    test (the same loader and evaluator, so the numbers are those
    ``tools/test.py`` gives the final checkpoint). Returns whether it was
    added; without a validation or with another test set nothing is written
    and the caller evaluates the checkpoint itself."""
    val_is_test = all(cfg.get(k) is not None for k in (
        'val_cfg', 'val_dataloader', 'val_evaluator')) and \
        cfg.val_dataloader == cfg.get('test_dataloader') and \
        cfg.val_evaluator == cfg.get('test_evaluator')
    if not val_is_test:
        return False
    hooks = list(cfg.get('custom_hooks') or [])
    hooks.append(dict(type='FinalMetricsHook', out=out, config=config))
    cfg.custom_hooks = hooks
    return True


def check_load_from(cfg: Config, trust: bool = False) -> None:
    """``--load-from`` / ``load_from`` must fit the trained model exactly.

    mmengine loads it non-strictly: a checkpoint of another architecture or
    class count would load partly (or not at all) with a warning, and the
    run would train from what is left. Refused here, naming the keys.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    state_dict = state_dict_of(load_weights_file(cfg.load_from, trust=trust))
    check_state_dict(model, state_dict, cfg.load_from)


def check_schedule(cfg: Config) -> None:
    train_cfg = cfg.get('train_cfg') or {}
    max_iters = train_cfg.get('max_iters')
    if max_iters is not None and (not isinstance(max_iters, int)
                                  or max_iters <= 0):
        raise ConfigError(
            f'train_cfg.max_iters must be a positive integer, got {max_iters!r}')
    interval = train_cfg.get('val_interval')
    if interval is not None and (not isinstance(interval, int) or interval <= 0):
        raise ConfigError('train_cfg.val_interval must be a positive integer, '
                          f'got {interval!r}')


def build_runner(cfg: Config) -> Runner:
    """The config's ``runner_type``, else :class:`~mmseg_ddb.engine.DDBRunner`
    (mmengine's runner with the GPU fixes)."""
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    return DDBRunner.from_cfg(cfg)


def release_process_group() -> None:
    """Destroy the process group once nothing holds the DDP wrapper.

    A DDP wrapper still alive when the gloo group is destroyed (or at
    interpreter exit) makes the process abort now and then after a
    successful run ("terminate called without an active exception", exit
    -6). The runner's reference cycles (loops and hooks point back at it)
    keep the wrapper alive until the garbage collector runs.
    """
    gc.collect()
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def stop_loader_workers(runner: Runner) -> None:
    """End the data workers of the runner's loops at once.

    Persistent workers are otherwise shut down by the loaders' finalisers,
    which wait up to 5 s per worker (``MP_STATUS_CHECK_INTERVAL``) for
    workers that have batches queued and never get to read the stop
    signal: 20 s at the end of every synthetic run with two loaders of two
    workers. Nothing reads from them after training, so they are
    terminated and then joined.
    """
    for name in ('train_loop', 'val_loop', 'test_loop'):
        loop = getattr(runner, '_' + name, None)
        loader = getattr(loop, 'dataloader', None)
        iterator = getattr(loader, '_iterator', None)
        workers = getattr(iterator, '_workers', None)
        if not workers:
            continue
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        iterator._shutdown_workers()
        loader._iterator = None


def run_training(cfg: Config) -> None:
    """Build the runner and train; always tears down the process group."""
    runner = None
    try:
        runner = build_runner(cfg)
        runner.train()
    finally:
        if runner is not None:
            stop_loader_workers(runner)
        runner = None  # noqa: F841 - drop the DDP wrapper before the group
        release_process_group()
