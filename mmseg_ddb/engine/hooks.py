"""Runtime hooks: exact resume, the NaN guard, safe checkpoint rotation and
log variables that stay on the device between logging intervals."""
import math
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook, LoggerHook, RuntimeInfoHook
from mmengine.utils import apply_to
from mmseg.registry import HOOKS

from ..errors import DDBError
from ..evaluation.metrics import metrics_record
from ..utils.fileio import write_json_atomic


class NonFiniteLossError(DDBError, RuntimeError):
    """Training produced a NaN or infinite loss."""


#: the hook stage :class:`SafeCheckpointHook` calls on every rank right before
#: a checkpoint is written (mmengine's ``before_save_checkpoint`` runs on
#: rank 0 only, so nothing collective can happen there)
BEFORE_CHECKPOINT = 'before_checkpoint_every_rank'


def any_rank(flag: bool) -> bool:
    """``flag`` of any rank (one all-reduce when distributed): lets every
    rank take the same decision, so none is left waiting in a collective."""
    if get_world_size() < 2:
        return bool(flag)
    value = torch.tensor([int(bool(flag))])
    all_reduce(value, op='max')
    return bool(value.item())


def rng_state() -> dict:
    """This process's torch RNG states on the CPU: the CPU generator and, with
    CUDA, the generator of the current device (the one this rank uses)."""
    state = dict(cpu=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the RNG states of :func:`rng_state` (read from a checkpoint, so
    possibly on a GPU: the setters take CPU byte tensors only). A state saved
    by a process of an earlier version (``cuda_all``: every device) is
    restored where the device count matches."""
    torch.set_rng_state(state['cpu'].cpu())
    if not torch.cuda.is_available():
        return
    if 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'].cpu())
    elif len(state.get('cuda_all') or ()) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda_all']])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the torch RNG states of every rank in every checkpoint and
    restores each rank's own on resume, right before the first resumed
    iteration.

    mmengine re-seeds on resume and replays the data loader up to the resumed
    iteration, which reproduces the data-side random streams (numpy / random
    in the workers, the sampler). The model-side stream (dropout, bridging
    masks, augmentation of the mixed image) lives in torch's global
    generators, whose states at the checkpoint are what this hook carries
    over. The states are gathered from all ranks when
    :class:`SafeCheckpointHook` is about to save (``BEFORE_CHECKPOINT``, on
    every rank); rank 0 writes them as ``rng_state = dict(world_size=N,
    ranks=[...])``. A resume with another number of ranks cannot continue the
    streams: it keeps mmengine's re-seeding and says so. A checkpoint loaded
    with ``--load-from`` (a new run, iteration 0) restores nothing: that run
    follows its own seed.
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None
        self._captured = None

    def before_checkpoint_every_rank(self, runner) -> None:
        state = rng_state()
        self._captured = (runner.iter, all_gather_object(state)
                          if get_world_size() > 1 else [state])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        captured, self._captured = self._captured, None
        states = captured[1] if captured and captured[0] == runner.iter \
            else None
        if states is None:
            if get_world_size() > 1:
                runner.logger.warning(
                    'RNGStateHook: the checkpoint was saved without '
                    'SafeCheckpointHook, so the other ranks\' RNG states '
                    'are not in it; a resume re-seeds instead')
                return
            states = [rng_state()]
        checkpoint['rng_state'] = dict(world_size=len(states), ranks=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') or {}
        self._pending = (meta.get('iter'), checkpoint.get('rng_state'))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self._pending is None:
            return
        (saved_iter, saved), self._pending = self._pending, None
        if saved is None or runner.iter == 0 or saved_iter != runner.iter:
            return  # not a resume (--load-from): the run's own seed rules
        if 'ranks' not in saved:  # one process's states, earlier versions
            saved = dict(world_size=1, ranks=[dict(
                cpu=saved['cpu'], cuda_all=saved.get('cuda'))])
        world = get_world_size()
        if saved['world_size'] != world:
            runner.logger.warning(
                f'RNGStateHook: the checkpoint holds the RNG states of '
                f'{saved["world_size"]} rank(s), this run has {world}: the '
                'random streams restart from the seed instead of continuing')
            return
        restore_rng_state(saved['ranks'][get_rank()])


def to_host(records: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """``records`` (one dict of log variables per iteration) with every
    one-element tensor replaced by a Python number, moved to the host in one
    transfer per device: one synchronisation for many iterations instead of
    one ``.item()`` per variable per iteration."""
    groups: Dict[torch.device, list] = {}
    for i, record in enumerate(records):
        for key, value in record.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                groups.setdefault(value.device, []).append((i, key, value))
    out = [dict(record) for record in records]
    for items in groups.values():
        values = torch.stack([v.detach().reshape(()).double()
                              for _, _, v in items]).cpu().tolist()
        for (i, key, tensor), value in zip(items, values):
            is_float = tensor.is_floating_point() or tensor.is_complex()
            out[i][key] = value if is_float else int(value)
    return out


# at most this many iterations are held on the device (a run without a logger)
MAX_PENDING = 1000


def logging_due(runner, batch_idx: int, pending: int = 0) -> bool:
    """Whether a ``LoggerHook`` of ``runner`` reads the training log
    variables after iteration ``batch_idx`` (its interval or the end of the
    data loader's epoch, the conditions of mmengine's ``LoggerHook``), this
    is the last training iteration, or ``pending`` iterations are waiting."""
    if runner.iter + 1 >= runner.max_iters or pending >= MAX_PENDING:
        return True
    for hook in runner.hooks:
        if isinstance(hook, LoggerHook) and (
                hook.every_n_inner_iters(batch_idx, hook.interval)
                or hook.end_of_epoch(runner.train_dataloader, batch_idx)):
            return True
    return False


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """mmengine's ``RuntimeInfoHook``, except that the log variables of each
    training iteration (the losses, pseudo-label quality) are kept on the
    device and moved to the message hub in one transfer when something reads
    them: at the logger's interval, before a checkpoint is written (the
    message hub is saved in it), before validation and at the end of
    training. mmengine's hook calls ``.item()`` on every variable every
    iteration, a host-device synchronisation that stalls the GPU queue once
    per step. What the logs, the checkpoints and the message hub hold is
    unchanged (the same values, in the same order)."""

    def __init__(self):
        super().__init__()
        self._pending: List[Dict[str, object]] = []

    def flush(self, runner) -> None:
        pending, self._pending = self._pending, []
        for record in to_host(pending):
            for key, value in record.items():
                runner.message_hub.update_scalar(f'train/{key}', value)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if outputs is not None:
            self._pending.append({
                k: v.detach() if isinstance(v, torch.Tensor) else v
                for k, v in outputs.items()})
        if logging_due(runner, batch_idx, len(self._pending)):
            self.flush(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._pending:
            self.flush(runner)
            checkpoint['message_hub'] = apply_to(
                runner.message_hub.state_dict(),
                lambda x: hasattr(x, 'cpu'), lambda x: x.cpu())

    def before_val(self, runner) -> None:
        self.flush(runner)
        super().before_val(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)


def grads_are_finite(optimizer) -> bool:
    """Whether every gradient of ``optimizer`` is finite (one device
    synchronisation: a NaN / Inf anywhere makes its tensor's norm
    non-finite)."""
    grads = [p.grad for group in optimizer.param_groups
             for p in group['params'] if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)
    return bool(torch.isfinite(torch.stack(norms)).all())


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Guards training against non-finite losses and gradients.

    ``mode='stop'`` (default): a non-finite loss stops training, naming the
    iteration, the loss terms and the last good checkpoint (which the atomic
    writes of :mod:`mmseg_ddb.compat` guarantee is complete), so a diverged
    run is not silently trained on for hours. The losses stay on the device
    and are checked together, in one transfer, whenever the logger reads
    them, before every checkpoint is written (so no checkpoint is saved after
    a non-finite loss) and at the end of training; ``check_interval=N``
    checks every N iterations as well (1: every iteration, at the cost of one
    host-device synchronisation per step).

    ``mode='skip'``: a step whose loss or gradients are not finite is not
    applied (the gradients are dropped, the weights and optimizer state stay
    as they were), the skip is logged and counted, and training stops once
    ``max_skips`` steps have been skipped in total. The count is kept in the
    checkpoints, so it survives a resume. The check costs one device
    synchronisation per step. With fp16 mixed precision the loss scaler
    already skips steps with infinite gradients; there only non-finite losses
    are counted.
    """

    priority = 'HIGHEST'

    def __init__(self, mode: str = 'stop', max_skips: int = 10,
                 check_interval: Optional[int] = None):
        if mode not in ('stop', 'skip'):
            raise ValueError(f'NaNGuardHook mode={mode!r}: use stop or skip')
        if mode == 'skip' and max_skips < 1:
            raise ValueError(f'NaNGuardHook max_skips={max_skips}: must be '
                             '>= 1')
        if check_interval is not None and check_interval < 1:
            raise ValueError(f'NaNGuardHook check_interval={check_interval}: '
                             'must be >= 1 (or None: when the logs are read)')
        self.mode = mode
        self.max_skips = max_skips
        self.check_interval = check_interval
        self.skips = 0
        self._skipped_now = False
        self._pending: List[tuple] = []

    @staticmethod
    def _last_checkpoint(runner):
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        return open(marker).read().strip() if osp.isfile(marker) else None

    @staticmethod
    def _non_finite(losses: dict) -> dict:
        return {k: float(v) for k, v in losses.items()
                if not math.isfinite(float(v))}

    def before_train(self, runner) -> None:
        if self.mode != 'skip':
            return
        self.skips = int(runner.message_hub.get_info('nan_guard_skips', 0))
        wrapper = runner.optim_wrapper
        scaler = getattr(wrapper, 'loss_scaler', None)
        if scaler is not None and getattr(scaler, 'is_enabled',
                                          lambda: True)():
            return  # fp16: the loss scaler skips non-finite steps itself
        step = wrapper.step

        def guarded_step(**kwargs):
            if grads_are_finite(wrapper.optimizer):
                return step(**kwargs)
            self._skipped_now = True  # zero_grad follows in update_params

        wrapper.step = guarded_step

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        losses = {k: v.detach() if isinstance(v, torch.Tensor) else v
                  for k, v in (outputs or {}).items() if 'loss' in k}
        if self.mode == 'skip':
            skipped, self._skipped_now = self._skipped_now, False
            bad = self._non_finite(to_host([losses])[0])
            if any_rank(bool(bad) or skipped):  # every rank counts the skip
                self._skip(runner, bad)
            return
        self._pending.append((runner.iter + 1, losses))
        every = self.check_interval
        if (every and (runner.iter + 1) % every == 0) or \
                logging_due(runner, batch_idx, len(self._pending)):
            self._check(runner)

    def before_checkpoint_every_rank(self, runner) -> None:
        self._check(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # rank 0 only: nothing collective (SafeCheckpointHook has already
        # checked on every rank; this covers mmengine's own CheckpointHook)
        self._check(runner, collective=False)

    def after_train(self, runner) -> None:
        self._check(runner)

    def _first_non_finite(self, runner, pending: list) -> Optional[str]:
        records = to_host([losses for _, losses in pending])
        for (iteration, _), losses in zip(pending, records):
            bad = self._non_finite(losses)
            if bad:
                terms = ', '.join(f'{k}={v}' for k, v in bad.items())
                seen = '' if iteration == runner.iter + 1 else \
                    f' (found at iteration {runner.iter + 1})'
                return f'at iteration {iteration}: {terms}{seen}'
        return None

    def _check(self, runner, collective: bool = True) -> None:
        """Stop mode: raise at the first non-finite loss still pending. Under
        DDP the losses differ per rank: the ranks agree first, so all of them
        stop together (one that stopped alone would leave the others waiting
        in the next collective until the watchdog kills them)."""
        pending, self._pending = self._pending, []
        found = self._first_non_finite(runner, pending) if pending else None
        if collective and get_world_size() > 1:
            if not any_rank(found is not None):
                return
            reports = all_gather_object(found)
            found = '; '.join(f'rank {r} {report}'
                              for r, report in enumerate(reports) if report)
        if found is None:
            return
        last = self._last_checkpoint(runner)
        raise NonFiniteLossError(
            f'non-finite loss {found}. '
            + (f'The last good checkpoint is {last}; ' if last else
               'No checkpoint was saved yet; ')
            + 'lower the learning rate or check the data, then resume '
            'with --resume.')

    def _skip(self, runner, bad: dict) -> None:
        terms = ', '.join(f'{k}={v}' for k, v in bad.items()) or \
            'non-finite gradients'
        last = self._last_checkpoint(runner)
        self.skips += 1
        runner.message_hub.update_info('nan_guard_skips', self.skips)
        runner.logger.warning(
            f'NaN guard: skipped the update of iteration {runner.iter + 1} '
            f'({terms}); {self.skips} of at most {self.max_skips} skips')
        if self.skips >= self.max_skips:
            raise NonFiniteLossError(
                f'{self.skips} steps skipped for non-finite losses or '
                f'gradients (the last at iteration {runner.iter + 1}: '
                f'{terms}); stopping. '
                + (f'The last good checkpoint is {last}; ' if last else '')
                + 'lower the learning rate or check the data, or raise '
                'NaNGuardHook max_skips.')


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint
    *before* writing the new one, so a kill in between leaves nothing to
    resume from. This one writes first (atomically, see
    :mod:`mmseg_ddb.compat`), points ``last_checkpoint`` at it, and only then
    prunes beyond ``max_keep_ckpts``.

    Before each save it calls the hook stage ``BEFORE_CHECKPOINT`` on every
    rank (mmengine saves on rank 0 only): the RNG states of all ranks are
    gathered and the NaN guard checks, collectively, there."""

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if self.save_best:
            runner.call_hook(BEFORE_CHECKPOINT)
        super()._save_best_checkpoint(runner, metrics)

    def _save_checkpoint_with_step(self, runner, step, meta):
        runner.call_hook(BEFORE_CHECKPOINT)  # on every rank, see above
        keep = self.max_keep_ckpts
        self.max_keep_ckpts = -1  # the parent saves without pruning
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        if keep <= 0:
            return
        if not self.keep_ckpt_ids or self.keep_ckpt_ids[-1] != step:
            self.keep_ckpt_ids.append(step)
        while len(self.keep_ckpt_ids) > keep:
            old = self.keep_ckpt_ids.popleft()
            if is_main_process():
                path = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(old))
                if self.file_backend.isfile(path):
                    self.file_backend.remove(path)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))


@HOOKS.register_module()
class FinalMetricsHook(Hook):
    """Writes the metrics of the validation that follows the last training
    iteration as ``tools/test.py --metrics-out`` writes them (with the
    checkpoint of that iteration), so that a caller need not evaluate the
    final checkpoint again in a second process.

    ``tools/train.py --final-metrics PATH`` adds it only when the config's
    validation is its test (same loader and evaluator). The validation loop
    runs the network in fp32, as ``tools/test.py`` without ``--amp`` does.

    Args:
        out (str): The JSON file to write (atomically, rank 0 only).
        config (str): The config file, recorded as ``tools/test.py`` does.
    """

    priority = 'LOW'

    def __init__(self, out: str, config: str = ''):
        self.out = out
        self.config = config

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        if not metrics or runner.iter != runner.max_iters or \
                not is_main_process():
            return
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.isfile(marker):
            return  # no checkpoint of this iteration to name
        with open(marker) as f:
            checkpoint = f.read().strip()
        record = metrics_record(metrics)
        record.update(config=self.config, checkpoint=checkpoint,
                      iteration=runner.iter, source='final validation')
        write_json_atomic(self.out, record)
