"""CUDA against the CPU on the same weights, inputs and random draws: one ST
step (both paths), one CKD step, prototype estimation and rectification give
the CPU's results within :data:`TOLERANCE`; a tiny ``tools/train.py`` run
on CUDA (fp32 and ``--amp``) finishes and evaluates.

Every test here is marked ``gpu``: without a CUDA GPU it is collected and
skipped (``conftest.pytest_collection_modifyitems``); ``pytest -m gpu``
runs only the gpu tests (``tools/gpu_check.sh`` does). The comparisons run
in fp32 with TF32 off and cuDNN's deterministic algorithms: TF32 rounds the
inputs of convolutions to 10 mantissa bits, a precision setting, not a
difference of the device. The random parts of a step (bridging mask, colour
jitter, blur) are drawn through a CPU generator seeded the same way for both
devices (the functions of ``bridging.py`` take one), so both devices mix and
augment identically; the head's dropout, drawn by each device's own
generator, is off.
"""
import copy
import os.path as osp
import re
from contextlib import contextmanager

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from test_tools import ok, run, train_cmd, train_options
from test_uda import batch, build, raw_batch

import mmseg_ddb  # noqa: F401
from mmseg_ddb.models.uda import bridging, distillation, self_training
from mmseg_ddb.models.uda.prototype_estimation import PrototypeEstimator
from mmseg_ddb.models.uda.prototypes import (
    ensemble_pseudo_label,
    rectification_weights,
    rectify_probabilities,
)
from mmseg_ddb.utils import save_prototypes

pytestmark = pytest.mark.gpu

#: How far CUDA may be from the CPU on the same inputs (fp32, TF32 off); the
#: README ("Performance") states the same bounds.
#: ``losses``: each logged loss of a step; ``gradients``: per weight tensor,
#: ``||g_cuda - g_cpu|| <= rel * ||g_cpu|| + floor * ||g_cpu of all weights||``
#: (the floor covers tensors whose gradient is ~0); ``labels``: the share
#: of pixels whose pseudo-label may differ (near-ties of the argmax);
#: ``images``: the bridged / augmented images (normalised units);
#: ``prototypes`` and ``rectification``: the estimated prototypes and the
#: rectification weights / rectified probabilities.
TOLERANCE = dict(
    losses=dict(rtol=1e-3, atol=1e-5),
    gradients=dict(rel=1e-2, floor=1e-4),
    labels=1e-3,
    images=dict(rtol=0.0, atol=1e-4),
    prototypes=dict(rtol=1e-5, atol=1e-5),
    rectification=dict(rtol=1e-4, atol=1e-5),
)
CUDA = torch.device('cuda')


@contextmanager
def fp32_exact():
    """TF32 off for convolutions and matrix products, deterministic cuDNN
    algorithms; the previous settings come back afterwards. Uses the
    precision API of torch >= 2.9 where it exists (torch raises on reading
    the legacy ``allow_tf32`` flags once the two APIs have been mixed), the
    legacy flags before."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(getattr(cudnn, 'conv', None), 'fp32_precision'):
        knobs = [(matmul, 'fp32_precision', 'ieee'), (cudnn.conv, 'fp32_precision', 'ieee')]
    else:
        knobs = [(matmul, 'allow_tf32', False), (cudnn, 'allow_tf32', False)]
    knobs += [(cudnn, 'benchmark', False), (cudnn, 'deterministic', True)]
    saved = [getattr(obj, name) for obj, name, _ in knobs]
    for obj, name, value in knobs:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for (obj, name, _), value in zip(knobs, saved):
            setattr(obj, name, value)


@pytest.fixture(scope='module')
def seg_cfg():
    """The tests' tiny segmentor (tests/test_uda.py), 32x32 crops, without
    the head's dropout: its mask is drawn by each device's own generator."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/deeplabv2red_r18v1c_tiny.py'))
    model = cfg.model
    model.backbone.update(base_channels=8, stem_channels=8)
    model.decode_head.update(in_channels=64, aspp_channels=8, channels=16,
                             dropout_ratio=0.0)
    model.data_preprocessor.size = (32, 32)
    return model


def seeded_draws(monkeypatch, module, seed: int) -> None:
    """Route the random draws of ``module``'s step (its ``make_mask`` and
    ``photometric_augment``, where it has them) through CPU generators
    seeded with ``seed``: the same draws on every device."""
    def seeded(fn, generator):
        return lambda *args, **kwargs: fn(*args, **dict(kwargs, generator=generator))

    for name, offset in (('make_mask', 0), ('photometric_augment', 1)):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, seeded(
                getattr(bridging, name), torch.Generator().manual_seed(seed + offset)))


class RecordingSGD(torch.optim.SGD):
    """SGD that keeps (on the CPU) the gradients of its last step."""

    def step(self, closure=None):
        self.grads = [p.grad.detach().cpu().clone() for group in self.param_groups
                      for p in group['params']]
        return super().step(closure)


def train_steps(model, device, batches, monkeypatch, module):
    """``len(batches)`` SGD steps of a copy of ``model`` on ``device``.

    Returns:
        tuple: (logged values per step, debug record per step, gradients
        per step), all on the CPU.
    """
    model = copy.deepcopy(model).to(device)
    model.train()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = RecordingSGD(list(params.values()), lr=0.01)
    wrapper = OptimWrapper(optimizer)
    logs, records, grads = [], [], []
    for step, data in enumerate(batches):
        seeded_draws(monkeypatch, module, 100 * step)
        model.debug_wanted, model.debug_record = True, None
        log_vars = model.train_step(copy.deepcopy(data), wrapper)
        logs.append({k: float(v) for k, v in log_vars.items()})
        records.append({k: _to_cpu(v) for k, v in model.debug_record.items()})
        grads.append(dict(zip(params, optimizer.grads)))
    return logs, records, grads


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return [_to_cpu(v) for v in value]
    return value


def assert_labels_agree(a, b):
    differ = (a != b).float().mean().item()
    assert differ <= TOLERANCE['labels'], f'{100 * differ:.3f} % of labels differ'


def assert_same_steps(cpu, gpu, label_keys, image_keys):
    """Same losses, labels, images and gradients within TOLERANCE."""
    (logs_c, recs_c, grads_c), (logs_g, recs_g, grads_g) = cpu, gpu
    for log_c, log_g in zip(logs_c, logs_g):
        assert log_c.keys() == log_g.keys()
        for key in log_c:
            assert log_g[key] == pytest.approx(log_c[key], rel=TOLERANCE['losses']['rtol'],
                                               abs=TOLERANCE['losses']['atol']), key
    for rec_c, rec_g in zip(recs_c, recs_g):
        for key in label_keys:
            assert_labels_agree(rec_g[key], rec_c[key])
        for key in image_keys:
            torch.testing.assert_close(rec_g[key], rec_c[key], **TOLERANCE['images'])
    for step_c, step_g in zip(grads_c, grads_g):
        total = torch.cat([g.flatten() for g in step_c.values()]).norm()
        assert total > 0, 'no gradient: the check would be weak'
        floor = TOLERANCE['gradients']['floor'] * total
        for name, g_cpu in step_c.items():
            error = (step_g[name] - g_cpu).norm()
            assert error <= TOLERANCE['gradients']['rel'] * g_cpu.norm() + floor, name


@pytest.mark.parametrize('mask', ['cut', 'class'])
def test_st_step_on_cuda_matches_the_cpu(seg_cfg, monkeypatch, mask):
    """Two ST steps (the second also updates the EMA): the same bridging
    mask, mixed image, pseudo-labels, losses and gradients. Threshold
    0 makes the batch weight 1 on both devices, so every target pixel's
    pseudo-label reaches the loss."""
    torch.manual_seed(0)
    st = build(dict(type='SelfTraining', segmentor=seg_cfg, mask=mask,
                    pseudo_threshold=0.0))
    st.init_weights()
    batches = [dict(source=raw_batch(seed=2 * i), target=raw_batch(seed=2 * i + 1))
               for i in range(2)]
    with fp32_exact():
        runs = [train_steps(st, device, batches, monkeypatch, self_training)
                for device in ('cpu', CUDA)]
    for rec_c, rec_g in zip(runs[0][1], runs[1][1]):
        assert torch.equal(rec_g['mask'], rec_c['mask'])  # the same draws
        assert rec_c['quality'].item() == rec_g['quality'].item() == 1.0
    assert_same_steps(*runs, label_keys=('pseudo_label', 'mixed_label'),
                      image_keys=('mixed_image', ))


def calibrate_bn(model, inputs) -> None:
    """Running BN statistics of ``inputs`` (one batch), so that the model's
    eval-mode activations have the scale a trained network's have (a fresh
    model's running statistics shrink its features ~1000x)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: this batch's statistics
    model.train()
    with torch.no_grad():
        model.logits_and_features(inputs)
    model.eval()


@pytest.fixture
def teacher_specs(seg_cfg, tmp_path):
    """Two ST checkpoints whose students differ, and prototypes of each
    made of its own features at random pixels (so the rectification weights
    vary from pixel to pixel)."""
    specs = []
    for i, name in enumerate(('cu', 'ca')):
        torch.manual_seed(20 + i)
        st = build(dict(type='SelfTraining', segmentor=seg_cfg))
        st.init_weights()
        calibrate_bn(st.model, batch(n=4, seed=30 + i)['inputs'])
        ckpt = str(tmp_path / f'st_{name}.pth')
        torch.save(dict(state_dict=st.state_dict()), ckpt)
        with torch.no_grad():
            _, feats = st.model.logits_and_features(batch(seed=40 + i)['inputs'])
        pixels = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
        picks = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(i))
        protos = str(tmp_path / f'proto_{name}.pth')
        save_prototypes(protos, pixels[picks[:19]].clone(), dict(name=name))
        specs.append(dict(name=name, checkpoint=ckpt, prototypes=protos))
    return specs


def test_ckd_step_on_cuda_matches_the_cpu(seg_cfg, teacher_specs, monkeypatch):
    """One CKD step: the same rectified ensemble label, teacher weights,
    augmented image, losses and gradients."""
    torch.manual_seed(0)
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=teacher_specs))
    ckd.init_weights()
    batches = [dict(source=raw_batch(seed=5), target=raw_batch(seed=6))]
    with fp32_exact():
        runs = [train_steps(ckd, device, batches, monkeypatch, distillation)
                for device in ('cpu', CUDA)]
    rec_c, rec_g = runs[0][1][0], runs[1][1][0]
    for y_c, y_g, w_c, w_g in zip(rec_c['teacher_labels'], rec_g['teacher_labels'],
                                  rec_c['teacher_weights'], rec_g['teacher_weights']):
        assert_labels_agree(y_g, y_c)
        # the weight of each pixel's own label: compared where the labels agree
        same = y_c == y_g
        assert w_c[same].std() > 0.01, 'flat rectification weights: the check would be weak'
        torch.testing.assert_close(w_g[same], w_c[same], **TOLERANCE['rectification'])
    assert_same_steps(*runs, label_keys=('label', 'label_before'),
                      image_keys=('augmented_image', ))


def test_prototype_estimation_on_cuda_matches_the_cpu():
    """The estimator of cal_prototype.py over several batches (features at
    half the logits' resolution, so the upsampling runs too, and a class
    with fewer than ``min_pixels`` pixels): the same counts, prototypes
    within TOLERANCE."""
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        feats = torch.randn(4, 32, 16, 16, generator=gen).relu()
        logits = torch.randn(4, 19, 32, 32, generator=gen)
        logits[:, 18] -= 10  # class 18: (almost) never the argmax
        logits[0, 18, :3, :3] += 20  # 9 pixels in one image: below min_pixels
        batches.append((feats, logits))
    estimators = {}
    for device in ('cpu', CUDA):
        est = PrototypeEstimator(19, 32, device=device)
        for feats, logits in batches:
            est.update(feats.to(device), logits.to(device))
        estimators[str(device)] = est
    cpu, gpu = estimators['cpu'], estimators['cuda']
    for key in ('counts', 'pixel_counts', 'image_counts'):
        assert torch.equal(getattr(gpu, key).cpu(), getattr(cpu, key)), key
    assert cpu.counts[18] == 0 and cpu.pixel_counts[18] >= 9
    assert (cpu.counts[:18] > 0).all()
    torch.testing.assert_close(gpu.result().cpu(), cpu.result(), **TOLERANCE['prototypes'])


@pytest.mark.parametrize('size', [None, (37, 53)])
def test_rectification_on_cuda_matches_the_cpu(size):
    """Rectification weights (at the features' resolution in fp32, and of
    the features upsampled to another size in float64), the rectified
    probabilities and the ensemble label of two teachers."""
    gen = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 24, 9, 13, generator=gen) for _ in range(2)]
    protos = [torch.randn(19, 24, generator=gen) for _ in range(2)]
    out_size = size or (9, 13)
    probs = [torch.randn(2, 19, *out_size, generator=gen).softmax(1) for _ in range(2)]
    results = {}
    for device in ('cpu', CUDA):
        with fp32_exact():
            weights = [rectification_weights(f.to(device), p.to(device), 1.0, size=size)
                       for f, p in zip(feats, protos)]
            rectified = [rectify_probabilities(q.to(device), w)
                         for q, w in zip(probs, weights)]
            labels, mean = ensemble_pseudo_label(rectified)
        results[str(device)] = [t.cpu() for t in (*weights, *rectified, mean)], labels.cpu()
    (cpu, labels_c), (gpu, labels_g) = results['cpu'], results['cuda']
    assert cpu[0].std() > 0
    for a, b in zip(gpu, cpu):
        torch.testing.assert_close(a, b, **TOLERANCE['rectification'])
    assert_labels_agree(labels_g, labels_c)


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
def test_train_tool_on_cuda_finishes_and_evaluates(tiny_data, tmp_path, amp):
    """tools/train.py on the tiny data, 8 iterations on the GPU: a
    checkpoint, the validation mIoU, CUDA memory used by the training (the
    ``memory`` column of mmengine's log: MB allocated on the model's
    device), and with --amp the precision of the GPU: native bf16 from
    compute capability 8.0 on, fp16 with a loss scaler before (DESIGN.md,
    device rules)."""
    work_dir = str(tmp_path / 'work')
    extra = ['--amp'] if amp else []
    res = ok(run(train_cmd(work_dir, train_options(tiny_data), *extra), tmp_path))
    out = res.stdout
    assert osp.isfile(osp.join(work_dir, 'iter_8.pth'))
    assert re.search(r'mIoU: \d+\.\d+', out), out[-2000:]
    assert 'CUDA available: True' in out
    memory = re.search(r'Iter\(train\) \[8/8\].*?memory: (\d+)', out)
    assert memory and int(memory.group(1)) > 0, out[-2000:]
    assert 'nan' not in out.split('Iter(train) [8/8]')[1].split('\n')[0].lower()
    if amp:
        native_bf16 = torch.cuda.get_device_capability() >= (8, 0)
        wrapper = 'BF16OptimWrapper' if native_bf16 else 'AmpOptimWrapper'
        assert wrapper in out
