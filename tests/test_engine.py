"""Runtime glue: the NaN guard, atomic checkpoint writes, the mmcv.ops
stand-in and weights-only loading of our own checkpoints."""
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
    return types.SimpleNamespace(work_dir=str(tmp_path), iter=iteration)


def test_nan_guard_names_iteration_term_and_checkpoint(tmp_path):
    hook = NaNGuardHook()
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

def _toy_run(tmp_path, batches, guard):
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
            return dict(loss=((out - 1) ** 2).mean())

    hooks = [dict(type='NaNGuardHook', **guard)] if guard else []
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
        default_hooks=dict(checkpoint=None, logger=dict(
            type='LoggerHook', interval=1)),
        custom_hooks=hooks, default_scope='mmseg',
        experiment_name=f'toy-{len(batches)}-{bool(guard)}-{os.getpid()}')
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


def test_nan_guard_rejects_bad_settings():
    with pytest.raises(ValueError, match='mode'):
        NaNGuardHook(mode='ignore')
    with pytest.raises(ValueError, match='max_skips'):
        NaNGuardHook(mode='skip', max_skips=0)


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


def test_amp_switch_picks_bf16_unless_the_gpu_lacks_it():
    from mmengine.config import Config
    from mmseg_ddb.apis import use_amp
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    use_amp(cfg)
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        assert cfg.optim_wrapper['type'] == 'AmpOptimWrapper'
    else:
        assert cfg.optim_wrapper['type'] == 'BF16OptimWrapper'
