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
