"""Loading the evaluated model of any DDB / mmseg checkpoint, safely."""
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

import mmseg_ddb  # noqa: F401  (allow-lists mmengine's checkpoint types)
from mmseg_ddb.errors import CheckpointError
from mmseg_ddb.models import DLV2AdapterHead
from mmseg_ddb.utils import load_model_weights, load_weights_file


def small_model():
    return DLV2AdapterHead(in_channels=8, in_index=0, aspp_channels=4,
                           channels=6, num_classes=19,
                           norm_cfg=dict(type='BN', requires_grad=True))


def random_state(seed):
    """A state dict of :func:`small_model` with distinct random values."""
    torch.manual_seed(seed)
    model = small_model()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.normal_()
            else:
                t.fill_(seed)
    return model.state_dict()


def prefixed(sd, prefix):
    return OrderedDict((prefix + k, v) for k, v in sd.items())


def assert_loaded(model, sd):
    own = model.state_dict()
    assert set(own) == set(sd)
    for k, v in sd.items():
        assert torch.equal(own[k], v), k


def save(tmp_path, obj, name='ckpt.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def test_st_layout_loads_the_student(tmp_path):
    student, ema = random_state(1), random_state(2)
    path = save(tmp_path, dict(
        meta=dict(iter=4000),
        state_dict={**prefixed(student, 'model.'), **prefixed(ema, 'ema_model.')}))
    model = small_model()
    assert load_model_weights(model, path) == 'model.'
    assert_loaded(model, student)


def test_ckd_layout_loads_the_student(tmp_path):
    stu, cu, ca = random_state(1), random_state(2), random_state(3)
    path = save(tmp_path, dict(state_dict={
        **prefixed(cu, 'cu_model.'), **prefixed(ca, 'ca_model.'),
        **prefixed(stu, 'stu_model.')}))
    model = small_model()
    assert load_model_weights(model, path) == 'stu_model.'
    assert_loaded(model, stu)


@pytest.mark.parametrize('wrap', [
    lambda sd: sd,
    lambda sd: dict(state_dict=sd, meta={}),
    lambda sd: dict(model=sd),
    lambda sd: dict(state_dict=prefixed(sd, 'module.')),
    lambda sd: dict(state_dict=prefixed(sd, 'module.model.')),
], ids=['bare', 'state_dict', 'model', 'ddp', 'ddp_st'])
def test_plain_and_ddp_layouts(tmp_path, wrap):
    sd = random_state(4)
    path = save(tmp_path, wrap(sd))
    model = small_model()
    load_model_weights(model, path)
    assert_loaded(model, sd)


def mutated(kind):
    sd = random_state(5)
    if kind == 'missing':
        del sd['bottleneck.bn.running_var']
        return sd, 'bottleneck.bn.running_var'
    if kind == 'unexpected':
        sd['aspp_modules.2.conv.weight'] = torch.zeros(4, 8, 3, 3)
        return sd, 'aspp_modules.2.conv.weight'
    sd['conv_seg.weight'] = torch.zeros(16, 6, 1, 1)  # 16 classes, not 19
    return sd, 'conv_seg.weight'


@pytest.mark.parametrize('kind', ['missing', 'unexpected', 'mismatched'])
@pytest.mark.parametrize('prefix', ['', 'model.', 'stu_model.'])
def test_keys_that_do_not_fit_are_named(tmp_path, kind, prefix):
    sd, key = mutated(kind)
    path = save(tmp_path, dict(state_dict=prefixed(sd, prefix)))
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_model_weights(model, path)
    msg = str(err.value)
    assert path in msg and key in msg
    if kind == 'mismatched':
        assert '(16, 6, 1, 1)' in msg and '(19, 6, 1, 1)' in msg
    # nothing was loaded
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match='not_there.pth'):
        load_weights_file(str(tmp_path / 'not_there.pth'))
    path = save(tmp_path, dict(state_dict=random_state(6)))
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_weights_file(path)
    assert path in str(err.value)


class Payload:
    """Stands for any object a checkpoint should not need to unpickle."""

    def __init__(self):
        self.note = 'arbitrary code could run here'


def test_arbitrary_pickles_are_refused_unless_trusted(tmp_path):
    sd = random_state(7)
    path = save(tmp_path, dict(state_dict=sd, extra=Payload()))
    model = small_model()
    with pytest.raises(CheckpointError) as err:
        load_model_weights(model, path)
    assert path in str(err.value)
    assert '--trust-checkpoint' in str(err.value)
    load_model_weights(model, path, trust=True)
    assert_loaded(model, sd)


RUNNER_SCRIPT = r'''
import sys
import torch
from torch import nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)
    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.bn(self.linear(inputs))
        if mode == 'loss':
            return dict(loss=((out.squeeze(1) - labels) ** 2).mean())
        return out

data = [dict(inputs=torch.randn(2), labels=torch.randn(())) for _ in range(8)]
runner = Runner(
    model=Toy(), work_dir=sys.argv[1],
    train_dataloader=dict(dataset=data, batch_size=4,
                          sampler=dict(type='DefaultSampler', shuffle=True),
                          collate_fn=dict(type='default_collate')),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
    train_cfg=dict(by_epoch=False, max_iters=4),
    default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4,
                                       by_epoch=False)),
    randomness=dict(seed=0))
runner.train()
'''


def make_runner_checkpoint(work_dir, import_ddb):
    script = work_dir / 'make.py'
    script.write_text(('import mmseg_ddb\n' if import_ddb else '')
                      + RUNNER_SCRIPT)
    res = subprocess.run([sys.executable, str(script), str(work_dir)],
                         cwd=str(work_dir), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    path = str(work_dir / 'iter_4.pth')
    assert osp.isfile(path)
    return path


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """Saved by a Runner in a process that imported mmseg_ddb, as our
    tools do."""
    return make_runner_checkpoint(tmp_path_factory.mktemp('ddb'), True)


def test_runner_checkpoint_loads_weights_only(runner_checkpoint):
    from mmengine.logging.history_buffer import HistoryBuffer
    ckpt = torch.load(runner_checkpoint, map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == 4
    scalars = ckpt['message_hub']['log_scalars']
    loss = scalars['train/loss']
    assert isinstance(loss, HistoryBuffer)
    # the statistics table is rebuilt on load
    values, counts = loss.data
    assert len(values) == 4
    assert float(loss.statistics('mean')) == pytest.approx(
        float(values.sum() / counts.sum()))
    assert set(ckpt['state_dict']) >= {'linear.weight', 'bn.running_mean'}
    assert load_weights_file(runner_checkpoint)['meta']['iter'] == 4


def test_runner_checkpoint_needs_the_allow_list(runner_checkpoint):
    """Without ``import mmseg_ddb`` the same safe load is refused, so the
    test above really exercises the compat allow-list."""
    code = ('import pickle, sys, torch\n'
            'try:\n'
            f'    torch.load({runner_checkpoint!r}, weights_only=True)\n'
            'except pickle.UnpicklingError:\n'
            '    sys.exit(3)\n')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         timeout=120)
    assert res.returncode == 3, res.stderr.decode()[-2000:]


def test_stock_mmengine_checkpoint_is_refused_with_advice(tmp_path):
    """A Runner without mmseg_ddb pickles HistoryBuffer's table of
    ``getattr`` references, which a safe loader must refuse: the user gets
    the --trust-checkpoint advice, not an unpickling traceback."""
    path = make_runner_checkpoint(tmp_path, False)
    with pytest.raises(CheckpointError) as err:
        load_weights_file(path)
    assert path in str(err.value) and '--trust-checkpoint' in str(err.value)
    assert load_weights_file(path, trust=True)['meta']['iter'] == 4
