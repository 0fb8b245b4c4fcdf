"""Transformer networks: the DAFormer-style and SegFormer heads,
the DINOv2 ViT backbone and its weights, the transformer optimizer recipe."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ddb  # noqa: F401  (registers the modules)
from mmseg_ddb.errors import ConfigError
from mmseg_ddb.models import DAFormerHead, DDBSegformerHead, DINOv2ViT

init_default_scope('mmseg')
from conftest import REPO as ROOT  # noqa: E402

BN = dict(type='BN', requires_grad=True)
LEVELS = [(4, 16), (8, 8), (12, 4), (16, 2)]  # (channels, side) per level


def levels(batch=2):
    return [torch.randn(batch, c, s, s) for c, s in LEVELS]


def daformer_head(**kwargs):
    return DAFormerHead(in_channels=[c for c, _ in LEVELS], in_index=[0, 1, 2, 3],
                        embed_dims=6, channels=10, dropout_ratio=0.1, num_classes=19,
                        norm_cfg=BN, align_corners=False, **kwargs)


def test_daformer_head_fuses_four_levels_at_the_first_resolution():
    head = daformer_head().eval()
    x = levels()
    logits, feature = head(x, return_feature=True)
    assert logits.shape == (2, 19, 16, 16) and feature.shape == (2, 10, 16, 16)
    assert head.feature_dim == 10
    assert torch.equal(head(x), logits)
    # the prototype feature is what the classifier reads (after ReLU)
    assert (feature >= 0).all()
    assert torch.allclose(head.conv_seg(feature), logits, atol=1e-6)


def test_daformer_head_structure_follows_the_description():
    head = daformer_head()
    assert [e.in_channels for e in head.embeds] == [4, 8, 12, 16]
    assert all(e.out_channels == 6 and e.kernel_size == (1, 1) for e in head.embeds)
    one, *separable = head.fusion_branches
    assert one.conv.kernel_size == (1, 1) and one.conv.in_channels == 24  # 4 x 6
    for branch, d in zip(separable, (6, 12, 18)):
        dw = branch.depthwise_conv.conv
        assert dw.dilation == (d, d) and dw.groups == 24 and dw.kernel_size == (3, 3)
        assert branch.pointwise_conv.conv.out_channels == 10
    assert head.bottleneck.conv.in_channels == 40  # 4 branches x 10
    assert head.bottleneck.conv.kernel_size == (3, 3)


def test_every_level_reaches_the_logits():
    head = daformer_head().eval()
    x = levels(batch=1)
    base = head(x)
    for i in range(4):
        y = [t.clone() for t in x]
        y[i] = y[i] + 1.0
        assert not torch.allclose(head(y), base), f'level {i} is ignored'


def test_segformer_head_keeps_the_feature_contract():
    head = DDBSegformerHead(in_channels=[c for c, _ in LEVELS], in_index=[0, 1, 2, 3],
                            channels=10, dropout_ratio=0.1, num_classes=19,
                            norm_cfg=BN, align_corners=False).eval()
    logits, feature = head(levels(), return_feature=True)
    assert logits.shape == (2, 19, 16, 16) and feature.shape == (2, 10, 16, 16)
    assert head.feature_dim == 10
    assert torch.allclose(head.conv_seg(feature), logits, atol=1e-6)


# -- DINOv2 ViT ------------------------------------------------------------------
def tiny_vit(**kwargs):
    kwargs.setdefault('out_indices', (0, 1))
    return DINOv2ViT(embed_dims=16, depth=2, num_heads=2, pretrain_size=56, **kwargs)


def test_vit_returns_patch_maps_and_resizes_to_a_multiple_of_the_patch():
    vit = tiny_vit().eval()
    vit.init_weights()
    outs = vit(torch.randn(2, 3, 64, 50))  # -> 70 x 56: 5 x 4 patches
    assert [o.shape for o in outs] == [(2, 16, 5, 4)] * 2
    assert vit(torch.randn(1, 3, 56, 56))[0].shape == (1, 16, 4, 4)


def test_vit_parameter_names_are_the_released_ones():
    names = set(tiny_vit().state_dict())
    for key in ('cls_token', 'pos_embed', 'patch_embed.proj.weight',
                'blocks.0.norm1.weight', 'blocks.0.attn.qkv.weight',
                'blocks.0.attn.proj.bias', 'blocks.0.ls1.gamma', 'blocks.0.mlp.fc1.weight',
                'blocks.0.mlp.fc2.weight', 'blocks.1.ls2.gamma', 'norm.weight'):
        assert key in names, key


def test_vit_loads_a_released_file_and_resizes_its_position_embedding(tmp_path):
    src = tiny_vit()
    src.init_weights()
    state = dict(src.state_dict())
    state['mask_token'] = torch.zeros(1, 16)  # in Meta's file, unused here
    path = str(tmp_path / 'dinov2.pth')
    torch.save(state, path)
    vit = tiny_vit(pretrained=path)
    vit.init_weights()
    assert torch.equal(vit.blocks[1].attn.qkv.weight, src.blocks[1].attn.qkv.weight)
    bigger = DINOv2ViT(embed_dims=16, depth=2, num_heads=2, pretrain_size=84,
                       out_indices=(0, 1), pretrained=path)
    bigger.init_weights()  # 4x4 grid -> 6x6
    assert bigger.pos_embed.shape == (1, 37, 16)
    assert torch.equal(bigger.pos_embed[:, 0], src.pos_embed[:, 0])
    # a whole segmentor's checkpoint, backbone under a prefix
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in state.items()}),
               str(tmp_path / 'seg.pth'))
    pre = tiny_vit(init_cfg=dict(type='Pretrained', prefix='backbone.',
                                 checkpoint=str(tmp_path / 'seg.pth')))
    pre.init_weights()
    assert torch.equal(pre.norm.weight, src.norm.weight)


def test_vit_weight_errors_say_how_to_pass_the_file(tmp_path):
    vit = tiny_vit(pretrained=str(tmp_path / 'missing.pth'))
    with pytest.raises(ConfigError, match=r'missing\.pth.*model\.pretrained=PATH'):
        vit.init_weights()
    torch.save({'blocks.0.foo': torch.zeros(1)}, str(tmp_path / 'other.pth'))
    with pytest.raises(ConfigError, match=r'other\.pth is not a DINOv2 ViT'):
        tiny_vit(pretrained=str(tmp_path / 'other.pth')).init_weights()
    with pytest.raises(ConfigError, match='out_indices'):
        tiny_vit(out_indices=(0, 5))


def test_vit_offline_download_fails_with_the_hint(monkeypatch):
    from mmengine.runner import CheckpointLoader

    def offline(*args, **kwargs):
        raise OSError('<urlopen error [Errno -3] Temporary failure in name resolution>')
    monkeypatch.setattr(CheckpointLoader, 'load_checkpoint', offline)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/daformer_vit-tiny.py'))
    cfg.model.pretrained = 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/' \
        'dinov2_vitb14_pretrain.pth'
    model = MODELS.build(cfg.model)
    with pytest.raises(ConfigError, match='dinov2_vitb14_pretrain.pth.*name resolution.*'
                       'model.pretrained=PATH'):
        model.init_weights()


# -- the transformer optimizer recipe ----------------------------------------------
@pytest.mark.parametrize('model', ['daformer_mit-tiny', 'daformer_vit-tiny'])
def test_transformer_recipe_no_decay_on_norms_and_position_head_lr_x10(model):
    cfg = Config.fromfile(osp.join(ROOT, f'configs/_base_/models/{model}.py'))
    sched = Config.fromfile(osp.join(
        ROOT, 'configs/_base_/schedules/adamw_poly10warm_40k_transformer.py'))
    net = MODELS.build(cfg.model)
    optim = build_optim_wrapper(net, sched.optim_wrapper)
    lr, wd = {}, {}
    names = {id(p): n for n, p in net.named_parameters()}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            lr[names[id(p)]], wd[names[id(p)]] = group['lr'], group['weight_decay']
    for name in lr:
        if name.startswith('decode_head.'):
            assert lr[name] == pytest.approx(6e-4), name
        else:
            assert lr[name] == pytest.approx(6e-5), name
        is_norm = any(isinstance(m, torch.nn.LayerNorm) and name.startswith(f'{n}.')
                      for n, m in net.named_modules())
        if name.startswith('backbone.') and (is_norm or name.endswith(('pos_embed',
                                                                        'cls_token'))):
            assert wd[name] == 0.0, name
        elif name.endswith('.weight') and name.startswith('backbone.') and \
                'proj' in name:
            assert wd[name] == 0.01, name
    assert sched.param_scheduler[0].end == 1500
    assert sched.optim_wrapper.optimizer.lr == 6e-5


# -- the tiny ViT variant through the DDB steps ----------------------------------
def test_tiny_vit_runs_the_st_and_ckd_steps_in_the_benchmark():
    """tools/benchmark.py's steps (supervised, ST with bridging and EMA,
    CKD with two teachers and prototypes, inference, FLOPs) on the tiny
    DINOv2-style variant of the synthetic demo."""
    from mmseg_ddb.apis.benchmark import run_benchmark
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/synthetic/st_cu_daformer_vit-tiny_synthetic.py'))
    res = run_benchmark(cfg, 'cpu', iters=1, warmup=0, batch_size=1, crop=56,
                        loader_batches=0)
    for key in ('supervised_ms', 'st_ms', 'ckd_ms', 'inference_ms'):
        assert res[key] > 0, key
    assert res['forward_gflop_per_image'] == pytest.approx(res['forward_gflop'])


def test_tiny_vit_prototypes_are_its_fused_head_feature():
    from mmseg_ddb.models.uda.prototype_estimation import PrototypeEstimator
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/daformer_vit-tiny.py'))
    model = MODELS.build(cfg.model).eval()
    model.init_weights()
    estimator = PrototypeEstimator(19, model.feature_dim, min_pixels=1)
    with torch.no_grad():
        logits, feats = model.logits_and_features(torch.randn(2, 3, 56, 56))
    estimator.update(feats, logits)
    assert estimator.prototypes.shape == (19, 32)
    seen = estimator.prototypes.abs().sum(1) > 0
    assert seen.any()


def test_flop_count_includes_the_fused_cpu_attention():
    """The ViT's attention (one fused kernel on the CPU) is in the benchmark's
    analytic count: 2 products of 2 * B*H*L*S*E FLOPs each."""
    import torch.nn.functional as F

    from mmseg_ddb.apis.benchmark import count_flops
    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 12, 8), torch.randn(2, 3, 12, 4)
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == \
        2 * 2 * 3 * 10 * 12 * (8 + 4)
