"""Runtime glue: the NaN guard, atomic checkpoint writes, the mmcv.ops
stand-in and weights-only loading of our own checkpoints."""
import itertools
import math
import os
import types

import pytest
import torch

import mmseg_ddb  # noqa: F401
from mmseg_ddb.engine import NaNGuardHook, NonFiniteLossError


def fake_runner(tmp_path, iteration=41, last=None):
    if last:
        (tmp_path / 'last_checkpoint').write_text(last)
    return types.SimpleNamespace(work_dir=str(tmp_path), iter=iteration,
                                 max_iters=1000, hooks=[])


def test_nan_guard_names_iteration_term_and_checkpoint(tmp_path):
    hook = NaNGuardHook(check_interval=1)
    runner = fake_runner(tmp_path, last=str(tmp_path / 'iter_40.pth'))
    hook.after_train_iter(runner, 0, outputs=dict(
        loss=torch.tensor(1.0), loss_src=torch.tensor(0.5),
        pseudo_quality=torch.tensor(math.nan)))  # not a loss: ignored
    with pytest.raises(NonFiniteLossError) as err:
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(math.nan), loss_mix=torch.tensor(math.inf)))
    msg = str(err.value)
    assert 'iteration 42' in msg and 'loss_mix=inf' in msg
    assert 'iter_40.pth' in msg


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'iter_1.pth'
    save_checkpoint({'w': torch.ones(3)}, str(path))
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError('disk full')

    # the write of the new checkpoint fails before it is complete on disk:
    # the previous file stays intact and no temporary file is left
    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError):
        save_checkpoint({'w': torch.zeros(3)}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['iter_1.pth']


def test_mmcv_ops_standin():
    import mmcv.ops
    from mmcv.ops import point_sample  # pure PyTorch, works
    out = point_sample(torch.randn(1, 2, 4, 4), torch.rand(1, 3, 2))
    assert out.shape == (1, 2, 3)
    with pytest.raises(ModuleNotFoundError, match='compiled mmcv'):
        from mmcv.ops import DeformConv2d  # noqa: F401
    assert mmcv.ops.sigmoid_focal_loss is not None  # importable, fails on use


def test_old_checkpoint_is_pruned_only_after_the_new_one_is_written(
        tmp_path, monkeypatch):
    from collections import deque

    from mmengine.logging import MessageHub

    from mmseg_ddb.engine import SafeCheckpointHook
    hook = SafeCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1)
    hook.out_dir = str(tmp_path)
    hook.keep_ckpt_ids = deque([1])
    (tmp_path / 'iter_1.pth').write_bytes(b'complete')
    from mmengine.fileio import get_file_backend
    hook.file_backend = get_file_backend(str(tmp_path))
    seen = []

    def save_checkpoint(out_dir, filename, *a, **k):
        # while the new checkpoint is being written the old one still exists
        seen.append(sorted(os.listdir(tmp_path)))
        raise OSError('killed during the save')

    runner = types.SimpleNamespace(
        save_checkpoint=save_checkpoint, work_dir=str(tmp_path),
        call_hook=lambda stage: None,
        message_hub=MessageHub.get_instance('test_safe_ckpt'))
    with pytest.raises(OSError):
        hook._save_checkpoint_with_step(runner, 2, dict(iter=2))
    assert seen == [['iter_1.pth']]
    assert os.listdir(tmp_path) == ['iter_1.pth']  # still there to resume

    def save_ok(out_dir, filename, *a, **k):
        (tmp_path / filename).write_bytes(b'new')
    runner.save_checkpoint = save_ok
    hook._save_checkpoint_with_step(runner, 2, dict(iter=2))
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'last_checkpoint']


# ---------------------------------------------------------------------------
# NaN guard, skip mode: a real mmengine runner on a toy model
# ---------------------------------------------------------------------------

_RUNS = itertools.count()


def _toy_run(tmp_path, batches, guard, log_interval=1, checkpoint=None,
             runtime='DeferredRuntimeInfoHook', hooks=()):
    """Train a linear model with AdamW on ``batches`` (one per iteration)
    under ``guard`` (NaNGuardHook kwargs, or None); returns its weight."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(3, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(inputs)
            return dict(loss=((out - 1) ** 2).mean(), acc=out.mean())

    custom = [dict(type='NaNGuardHook', **guard)] if guard else []
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=[dict(inputs=torch.tensor(b, dtype=torch.float32))
                     for b in batches],
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'), batch_size=1,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=len(batches)),
        default_hooks=dict(
            runtime_info=dict(type=runtime),
            checkpoint=checkpoint and dict(
                type='SafeCheckpointHook', by_epoch=False,
                interval=checkpoint),
            logger=dict(type='LoggerHook', interval=log_interval)),
        custom_hooks=custom + list(hooks), default_scope='mmseg',
        experiment_name=f'toy-{next(_RUNS)}-{os.getpid()}')
    runner.train()
    return runner.model.linear.weight.detach().clone(), runner


GOOD = [[1., 2., 3.], [0., 1., -1.], [2., 2., 0.], [-1., 0., 1.]]
NAN = [math.nan, 1., 1.]
INF = [math.inf, 1., 1.]


def test_nan_guard_skip_mode_leaves_weights_and_optimizer_untouched(
        tmp_path):
    batches = [GOOD[0], NAN, GOOD[1], INF, GOOD[2], GOOD[3]]
    skipped, runner = _toy_run(tmp_path / 'a', batches,
                               dict(mode='skip', max_skips=3))
    clean, _ = _toy_run(tmp_path / 'b', GOOD, None)
    # the two bad steps were not applied: the same weights as a run that
    # never saw them (AdamW state included: its step count is the same)
    assert torch.equal(skipped, clean)
    assert runner.message_hub.get_info('nan_guard_skips') == 2


def test_nan_guard_skip_mode_stops_after_max_skips(tmp_path):
    batches = [GOOD[0], NAN, GOOD[1], NAN, GOOD[2]]
    with pytest.raises(NonFiniteLossError, match='2 steps skipped.*'
                       'iteration 4'):
        _toy_run(tmp_path, batches, dict(mode='skip', max_skips=2))


def test_nan_guard_stop_mode_checks_when_the_logs_are_read(tmp_path):
    batches = [GOOD[0], GOOD[1], NAN, GOOD[2], GOOD[3], GOOD[0]]
    # the losses are read back every 5 iterations: the NaN of iteration 3 is
    # found at iteration 5 and named
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 3: loss=nan \(found at iteration 5'):
        _toy_run(tmp_path / 'a', batches, dict(mode='stop'), log_interval=5)
    # check_interval=1: at once
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 3: loss=nan\. No checkpoint'):
        _toy_run(tmp_path / 'b', batches,
                 dict(mode='stop', check_interval=1), log_interval=5)


def test_nan_guard_stop_mode_checks_before_every_checkpoint(tmp_path):
    batches = [GOOD[0], GOOD[1], NAN, GOOD[2], GOOD[3], GOOD[0], GOOD[1]]
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 3: loss=nan \(found at iteration 4'
                       r'\)\. The last good checkpoint is .*iter_2\.pth'):
        _toy_run(tmp_path, batches, dict(mode='stop'), log_interval=100,
                 checkpoint=2)
    # no checkpoint was written after the non-finite loss
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']


def test_deferred_runtime_info_logs_the_same_values(tmp_path):
    import numpy as np
    batches = GOOD + GOOD[:3]  # 7 iterations, logs after 3 and 6 and 7
    _, deferred = _toy_run(tmp_path / 'd', batches, dict(mode='stop'),
                           log_interval=3, checkpoint=5)
    _, plain = _toy_run(tmp_path / 'p', batches, dict(mode='stop'),
                        log_interval=3, checkpoint=5,
                        runtime='RuntimeInfoHook')
    for key in ('train/loss', 'train/acc'):
        values, counts = deferred.message_hub.get_scalar(key).data
        expected, expected_counts = plain.message_hub.get_scalar(key).data
        assert len(values) == 7
        assert np.array_equal(values, expected)
        assert np.array_equal(counts, expected_counts)
    # the checkpoint of iteration 5 (between two logs) holds iterations 4
    # and 5 as well
    for run in ('d', 'p'):
        hub = torch.load(tmp_path / run / 'iter_5.pth',
                         weights_only=False)['message_hub']
        assert len(hub['log_scalars']['train/loss'].data[0]) == 5
    hub_d, hub_p = (torch.load(tmp_path / run / 'iter_5.pth',
                               weights_only=False)['message_hub']
                    for run in ('d', 'p'))
    assert np.array_equal(hub_d['log_scalars']['train/loss'].data[0],
                          hub_p['log_scalars']['train/loss'].data[0])


def test_no_host_reads_between_logging_intervals(tmp_path):
    """With the deferred runtime hook and the NaN guard's default, the hooks
    read the losses back only when the logger reads them (0-based
    iterations 2, 5 and the last, 6); mmengine's RuntimeInfoHook reads them
    every iteration. (The sampler's shuffle on the CPU is not a device read.)
    """
    from conftest import host_reads
    from mmengine.logging import MessageHub

    def iteration():
        return MessageHub.get_current_instance().get_info('iter')

    batches = GOOD + GOOD[:3]
    reads_at = {}
    for runtime in ('DeferredRuntimeInfoHook', 'RuntimeInfoHook'):
        with host_reads(iteration) as reads:
            _toy_run(tmp_path / runtime, batches, dict(mode='stop'),
                     log_interval=3, runtime=runtime)
        reads_at[runtime] = {it for it, _, where in reads
                             if it is not None and 'sampler' not in where}
    assert reads_at['DeferredRuntimeInfoHook'] == {2, 5, 6}
    assert reads_at['RuntimeInfoHook'] == set(range(7))


def test_nan_guard_rejects_bad_settings():
    with pytest.raises(ValueError, match='mode'):
        NaNGuardHook(mode='ignore')
    with pytest.raises(ValueError, match='max_skips'):
        NaNGuardHook(mode='skip', max_skips=0)
    with pytest.raises(ValueError, match='check_interval'):
        NaNGuardHook(check_interval=0)


def test_bf16_optim_wrapper_autocasts_without_a_scaler():
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Linear(4, 3)
    wrapper = build_optim_wrapper(model, dict(
        type='BF16OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    assert not hasattr(wrapper, 'loss_scaler')
    x = torch.randn(5, 4)
    with wrapper.optim_context(model):
        out = model(x)
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    assert model.weight.grad is None  # zeroed after the step


class _Range(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return torch.tensor(i)


def test_loader_workers_end_with_the_run():
    """stop_loader_workers ends the persistent workers of the runner's loops
    (which torch's finaliser would join with a 5 s timeout per worker) and
    leaves loaders that never started alone."""
    from mmseg_ddb.apis.train import stop_loader_workers
    loader = torch.utils.data.DataLoader(_Range(), batch_size=2,
                                         num_workers=2,
                                         persistent_workers=True)
    batches = iter(loader)
    assert int(next(batches)[0]) == 0          # workers started, prefetching
    workers = list(loader._iterator._workers)
    assert all(w.is_alive() for w in workers)
    idle = torch.utils.data.DataLoader(_Range(), num_workers=2,
                                       persistent_workers=True)
    runner = types.SimpleNamespace(
        _train_loop=types.SimpleNamespace(dataloader=loader),
        _val_loop=types.SimpleNamespace(dataloader=idle),
        _test_loop=None)
    stop_loader_workers(runner)
    assert not any(w.is_alive() for w in workers)
    assert loader._iterator is None and idle._iterator is None


def test_config_text_is_formatted_once_per_content(monkeypatch):
    """compat patch 5: mmengine formats the config with yapf every time it
    logs, dumps or checkpoints it; the same content is formatted once, the
    text is unchanged, and a changed config gets its own text."""
    import mmengine.config.config as config_module
    from mmengine.config import Config

    from mmseg_ddb.compat import _PRETTY_TEXT
    _PRETTY_TEXT.clear()
    calls = []
    format_code = config_module.FormatCode
    monkeypatch.setattr(config_module, 'FormatCode',
                        lambda *a, **k: calls.append(1) or format_code(*a, **k))
    cfg = Config(dict(model=dict(type='X', depth=18), lr=0.01))
    text = cfg.pretty_text
    assert cfg.pretty_text == text and Config(cfg.to_dict()).pretty_text == text
    assert len(calls) == 1
    assert text == Config.pretty_text.fget.__wrapped__(cfg)  # as mmengine's
    assert len(calls) == 2 and 'depth=18' in text
    cfg.model.depth = 50
    assert 'depth=50' in cfg.pretty_text and len(calls) == 3
