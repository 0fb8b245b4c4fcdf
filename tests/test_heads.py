"""DeepLabV2 heads and the DDB segmentor (METHOD.md 2.1, 3)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ddb  # noqa: F401  (registers the heads)
from mmseg_ddb.models import DDBEncoderDecoder, DLV2AdapterHead, DLV2Head

init_default_scope('mmseg')
BN = dict(type='BN', requires_grad=True)


def adapter_head(in_channels=16, aspp_channels=8, channels=12, **kwargs):
    kwargs.setdefault('norm_cfg', BN)
    return DLV2AdapterHead(in_channels=in_channels, in_index=3,
                           aspp_channels=aspp_channels, channels=channels,
                           dropout_ratio=0.1, num_classes=19,
                           align_corners=False, **kwargs)


def layer_outputs(batch=2, channels=16, size=(9, 13)):
    """Four backbone stages; only the last (``in_index=3``) is used."""
    return [torch.randn(batch, 4, *size) for _ in range(3)] + [
        torch.randn(batch, channels, *size)]


def test_adapter_head_logits_and_feature_shapes():
    head = adapter_head().eval()
    x = layer_outputs()
    logits = head(x)
    assert logits.shape == (2, 19, 9, 13)
    logits2, feature = head(x, return_feature=True)
    assert feature.shape == (2, 12, 9, 13)
    assert head.feature_dim == 12
    assert torch.equal(logits, logits2)
    # the feature is the post-bottleneck (ReLU) map the classifier reads
    assert (feature >= 0).all()
    assert torch.allclose(head.conv_seg(feature), logits, atol=1e-6)


def test_adapter_head_structure_follows_method():
    head = adapter_head(in_channels=16, aspp_channels=8, channels=12)
    assert [m.conv.dilation for m in head.aspp_modules] == [(6, 6), (12, 12)]
    assert [m.conv.padding for m in head.aspp_modules] == [(6, 6), (12, 12)]
    assert all(m.conv.kernel_size == (3, 3) for m in head.aspp_modules)
    assert head.bottleneck.conv.in_channels == 16  # 2 branches x 8, concat
    assert head.bottleneck.conv.kernel_size == (3, 3)
    assert head.conv_seg.kernel_size == (1, 1)
    assert isinstance(head.dropout, torch.nn.Dropout2d)
    assert head.dropout.p == 0.1


def test_adapter_head_parameter_names_match_original_checkpoints():
    keys = set(adapter_head().state_dict())
    bn = ['weight', 'bias', 'running_mean', 'running_var',
          'num_batches_tracked']
    expected = {'conv_seg.weight', 'conv_seg.bias', 'bottleneck.conv.weight'}
    expected |= {f'bottleneck.bn.{k}' for k in bn}
    for i in (0, 1):
        expected.add(f'aspp_modules.{i}.conv.weight')
        expected |= {f'aspp_modules.{i}.bn.{k}' for k in bn}
    assert keys == expected  # no conv bias in front of a BN


def test_adapter_head_init_follows_method_2_1():
    torch.manual_seed(0)
    head = adapter_head(in_channels=128, aspp_channels=256, channels=32)
    head.init_weights()
    for branch in head.aspp_modules:
        w = branch.conv.weight
        assert abs(w.mean().item()) < 1e-3
        assert w.std().item() == pytest.approx(0.01, rel=0.05)
        gamma = branch.bn.weight  # N(0, 0.01) too, not 1 (mmcv override)
        assert abs(gamma.mean().item()) < 0.003
        assert gamma.std().item() == pytest.approx(0.01, rel=0.25)
        assert torch.equal(branch.bn.bias, torch.zeros_like(branch.bn.bias))
    bottleneck = head.bottleneck
    assert torch.equal(bottleneck.bn.weight,
                       torch.ones_like(bottleneck.bn.weight))
    assert torch.equal(bottleneck.bn.bias, torch.zeros_like(bottleneck.bn.bias))
    # Kaiming normal, fan_out (ConvModule's own init)
    fan_out = 32 * 3 * 3
    assert bottleneck.conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / fan_out), rel=0.05)
    # conv_seg keeps PyTorch's default: uniform within 1/sqrt(fan_in)
    bound = 1 / math.sqrt(32)
    assert head.conv_seg.weight.abs().max().item() <= bound
    assert head.conv_seg.weight.std().item() == pytest.approx(
        bound / math.sqrt(3), rel=0.1)


def test_adapter_head_loss_ignores_255():
    head = adapter_head()
    x = layer_outputs(size=(4, 4))
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        label = torch.randint(0, 19, (1, 32, 32))
        label[:, :8] = 255
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(32, 32)))
        samples.append(sample)
    losses = head.loss(x, samples, dict())
    assert torch.isfinite(losses['loss_ce'])
    losses['loss_ce'].backward()
    assert head.conv_seg.weight.grad is not None


def vanilla_head(in_channels=16, **kwargs):
    return DLV2Head(in_channels=in_channels, in_index=3, num_classes=19,
                    align_corners=False, **kwargs)


def test_vanilla_head_sums_four_dilated_classifiers():
    head = vanilla_head().eval()
    assert not hasattr(head, 'conv_seg')
    assert [c.dilation for c in head.aspp_modules] == [(d, d) for d in
                                                       (6, 12, 18, 24)]
    assert set(head.state_dict()) == {
        f'aspp_modules.{i}.{p}' for i in range(4) for p in ('weight', 'bias')}
    x = layer_outputs()
    logits, feature = head(x, return_feature=True)
    assert logits.shape == (2, 19, 9, 13)
    assert torch.equal(head(x), logits)
    # the returned feature is the layer4 input itself
    assert feature.shape == (2, 16, 9, 13)
    assert torch.equal(feature, x[3])
    assert head.feature_dim == 16
    by_hand = sum(F.conv2d(x[3], c.weight, c.bias, padding=d, dilation=d)
                  for c, d in zip(head.aspp_modules, (6, 12, 18, 24)))
    assert torch.allclose(logits, by_hand, atol=1e-5)


def test_vanilla_head_init_and_loss():
    torch.manual_seed(0)
    head = vanilla_head(in_channels=64)
    head.init_weights()
    for conv in head.aspp_modules:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
        assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 16, 16)))
    sample.set_metainfo(dict(img_shape=(16, 16)))
    losses = head.loss(layer_outputs(1, 64, (2, 2)), [sample], dict())
    assert torch.isfinite(losses['loss_ce'])


@pytest.fixture(scope='module')
def segmentor(tiny_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    model.init_weights()
    return model.eval()


def test_segmentor_from_tiny_config(segmentor, tiny_cfg):
    assert isinstance(segmentor, DDBEncoderDecoder)
    assert isinstance(segmentor.decode_head, DLV2AdapterHead)
    assert segmentor.feature_dim == tiny_cfg.model.decode_head.channels == 64


def test_logits_and_features_shapes(segmentor):
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        logits, feats = segmentor.logits_and_features(x)
        assert logits.shape == (2, 19, 16, 12)  # output stride 8
        assert feats.shape == (2, 64, 16, 12)
        big_logits, big_feats = segmentor.logits_and_features(
            x, size=(128, 96))
    assert big_logits.shape == (2, 19, 128, 96)
    assert big_feats.shape == (2, 64, 128, 96)
    assert torch.allclose(
        big_logits, F.interpolate(logits, (128, 96), mode='bilinear',
                                  align_corners=False), atol=1e-5)


@pytest.fixture(scope='module')
def confident_segmentor(segmentor):
    """The tiny segmentor with spatially varying, confident logits (a fresh
    init predicts an almost uniform softmax, which would hide the order of
    softmax and resize)."""
    model = copy.deepcopy(segmentor)
    head = model.decode_head
    with torch.no_grad():
        for branch in head.aspp_modules:
            branch.bn.weight.fill_(1.0)
        logits = model.logits_and_features(torch.randn(1, 3, 64, 128))[0]
        spread = (logits - logits.mean(1, keepdim=True)).std()
        head.conv_seg.weight.mul_(8 / spread)
        head.conv_seg.bias.zero_()
    return model


def test_predict_resizes_the_softmax_to_the_original_size(
        confident_segmentor):
    segmentor = confident_segmentor
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 128)
    ori_shape = (101, 203)  # e.g. the full-resolution label
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(64, 128), ori_shape=ori_shape,
                                 pad_shape=(64, 128),
                                 padding_size=[0, 0, 0, 0]))
        samples.append(sample)
    with torch.no_grad():
        out = segmentor.predict(x, samples)
        logits = segmentor.decode_head(segmentor.backbone(x))
    # by hand: logits -> input size -> softmax -> label size -> argmax
    logits = F.interpolate(logits, (64, 128), mode='bilinear',
                           align_corners=False)
    probs = F.interpolate(logits.softmax(1), ori_shape, mode='bilinear',
                          align_corners=False)
    assert (probs.amax(1) > 0.5).float().mean() > 0.1  # a non-trivial test
    assert len(probs.argmax(1).unique()) > 1
    for i, sample in enumerate(out):
        pred = sample.pred_sem_seg.data
        assert pred.shape == (1, *ori_shape)
        assert torch.allclose(sample.seg_logits.data, probs[i], atol=1e-5)
        assert torch.equal(pred[0], probs[i].argmax(0))
    # resizing logits instead would give other values
    wrong = F.interpolate(logits, ori_shape, mode='bilinear',
                          align_corners=False).softmax(1)
    assert not torch.allclose(wrong[0], out[0].seg_logits.data, atol=1e-5)


def test_predict_without_samples_keeps_the_input_size(segmentor):
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = segmentor.predict(x)
    assert out[0].pred_sem_seg.data.shape == (1, 64, 96)
    probs = out[0].seg_logits.data
    assert torch.allclose(probs.sum(0), torch.ones(64, 96), atol=1e-5)
