"""Every config parses, names only registered types, and its model builds."""
import glob
import os.path as osp
import re

import pytest
from conftest import REPO as ROOT  # noqa: E402
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis import wrap_uda
from mmseg_ddb.apis.prototypes import default_prototype_path
from mmseg_ddb.pipeline import build_plan
from mmseg_ddb.utils import iter_dicts
from mmseg_ddb.utils.config import _known_types

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p)
PIPELINES = [p for p in CONFIGS if osp.basename(p).startswith('ddb_')]
EXPERIMENTS = [p for p in CONFIGS if p not in PIPELINES]


def rel(p):
    return osp.relpath(p, ROOT)


def test_the_original_readme_names_exist():
    for name in [
            'configs/gtav2cityscapes/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py',
            'configs/gtav2cityscapes/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py',
            'configs/gtav2cityscapes/r1_ckd_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py',
            'configs/gtav2cityscapes/r1_ckd_dlv2_r101v1c_2x2_512x512_40k_gtav2cityscapes.py',
            'configs/uda/st/gta2cs_st-cu-r2_dlv2red-adapter_r101v1c_poly10warm_s0.py',
            'configs/uda/st/gta2cs_st-ca-r2_dlv2red-adapter_r101v1c_poly10warm_s0.py',
    ]:
        assert osp.isfile(osp.join(ROOT, name)), name


def shrink_real_network(cfg):
    """The real configs' model, shrunk so that 100 builds stay fast: the
    same types and wiring, fewer and narrower layers."""
    backbone = cfg.model.backbone
    if backbone.get('depth') == 101:
        cfg.merge_from_dict({
            'model.backbone.depth': 18, 'model.backbone.base_channels': 8,
            'model.backbone.stem_channels': 8,
            'model.decode_head.in_channels': 64, 'model.pretrained': None})
    elif backbone.type == 'MixVisionTransformer' and backbone.embed_dims == 64:
        cfg.merge_from_dict({
            'model.backbone.embed_dims': 8, 'model.backbone.num_layers': [1, 1, 1, 1],
            'model.decode_head.in_channels': [8, 16, 40, 64],
            'model.decode_head.channels': 8, 'model.pretrained': None})
        if 'embed_dims' in cfg.model.decode_head:
            cfg.model.decode_head.embed_dims = 8
    elif backbone.type == 'DINOv2ViT' and not backbone.get('embed_dims'):
        cfg.merge_from_dict({
            'model.backbone.embed_dims': 16, 'model.backbone.num_heads': 2,
            'model.neck.in_channels': [16] * 4, 'model.neck.out_channels': 8,
            'model.decode_head.in_channels': [8] * 4,
            'model.decode_head.embed_dims': 8, 'model.decode_head.channels': 8,
            'model.pretrained': None})


@pytest.mark.parametrize('path', EXPERIMENTS, ids=rel)
def test_experiment_config_builds(path):
    cfg = Config.fromfile(path)
    known = _known_types()
    for node in iter_dicts(cfg.to_dict()):
        t = node.get('type')
        if isinstance(t, str):
            assert t in known, f'{rel(path)}: unregistered type {t}'
    shrink_real_network(cfg)
    cfg.model.init_cfg = None
    wrap_uda(cfg)
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    kind = cfg.model['type']
    name = osp.basename(path)
    if '/configs/tests/' in path:
        assert kind == 'DDBEncoderDecoder'  # released-weight evaluation
    elif re.search(r'(^|_)st[_-]', name):
        assert kind == 'SelfTraining'
        assert model.mask == ('cut' if ('_cu_' in name or 'st-cu' in name)
                              else 'class')
        if name.startswith('r2_') or '-r2_' in name:
            assert model.distilled_model_path
        else:
            assert not model.distilled_model_path
    elif 'ckd' in name:
        assert kind == 'CrossPathDistillation'
        assert [t['name'] for t in model.teacher_specs] == ['cu', 'ca']
    else:
        assert kind == 'DDBEncoderDecoder'


def test_schedule_is_the_original():
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/gtav2cityscapes/'
        'r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'))
    assert cfg.optim_wrapper.optimizer.lr == 6e-6  # round 2: lr / 10
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert cfg.train_cfg.max_iters == 40000
    r1 = Config.fromfile(osp.join(
        ROOT, 'configs/gtav2cityscapes/'
        'r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'))
    assert r1.optim_wrapper.optimizer.lr == 6e-5
    assert r1.optim_wrapper.optimizer.weight_decay == 0.01
    assert r1.train_dataloader.batch_size == 4


TRANSFORMER_LEAVES = [p for p in EXPERIMENTS if '_daformer_' in osp.basename(p)
                      and '/synthetic/' not in p]


def test_every_setting_has_the_transformer_leaves_and_pipelines():
    for setting in ('gtav2cityscapes', 'gta+syn2cs', 'gta2cs+map', 'synthia2cs'):
        for net in ('mitb5', 'dinov2-b'):
            assert osp.join(ROOT, 'configs', setting, f'ddb_{setting}_{net}.py') in PIPELINES
            for stage in ('st_cu', 'st_ca', 'ckd'):
                for r in (1, 2):
                    name = f'r{r}_{stage}_daformer_{net}_1x2_512x512_40k_{setting}.py'
                    assert osp.join(ROOT, 'configs', setting, name) in TRANSFORMER_LEAVES
    assert len(TRANSFORMER_LEAVES) == 48


@pytest.mark.parametrize('path', TRANSFORMER_LEAVES[::7], ids=rel)
def test_transformer_leaves_use_the_recipe_and_keep_ddb_defaults(path):
    cfg = Config.fromfile(path)
    ow = cfg.optim_wrapper
    assert ow.optimizer.type == 'AdamW'
    assert ow.optimizer.lr == (6e-6 if osp.basename(path).startswith('r2_st') else 6e-5)
    assert ow.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert ow.paramwise_cfg.norm_decay_mult == 0.0
    assert ow.paramwise_cfg.custom_keys.pos_embed.decay_mult == 0.0
    assert cfg.param_scheduler[0].end == 1500  # linear warmup
    assert cfg.train_dataloader.batch_size == 2
    if '_st_' in osp.basename(path):
        assert cfg.uda.alpha == 0.99 and cfg.uda.pseudo_threshold == 0.968
    # ImageNet / DINOv2 weights come from model.pretrained, as for R101
    assert cfg.model.pretrained.startswith('https://')


def test_transformer_prototype_and_checkpoint_names_carry_the_network():
    ckd = Config.fromfile(osp.join(
        ROOT, 'configs/gtav2cityscapes/r2_ckd_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py'))
    teacher = ckd.uda.teachers[0]
    assert teacher.prototypes == default_prototype_path(teacher.config) == \
        'prototypes/gtav2cityscapes_round2/gtav2cityscapes_st-cu_mitb5.pth'


def test_vit_l_base_config_fits_its_depth():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/daformer_dinov2-l.py'))
    assert cfg.model.pretrained.endswith('dinov2_vitl14_pretrain.pth')
    cfg.merge_from_dict({'model.backbone.embed_dims': 16, 'model.backbone.num_heads': 2,
                         'model.neck.in_channels': [16] * 4, 'model.pretrained': None})
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    assert len(model.backbone.blocks) == 24
    assert model.backbone.out_indices == (5, 11, 17, 23)


@pytest.mark.parametrize('path', PIPELINES, ids=rel)
def test_pipeline_config_plans(path):
    cfg = Config.fromfile(path)
    stages = build_plan(cfg.pipeline)
    names = [s.name for s in stages]
    for r in (1, 2):
        for stage in ('st_cu', 'st_ca', 'proto_cu', 'proto_ca', 'ckd'):
            assert f'r{r}_{stage}' in names
    for stage in stages:
        assert osp.isfile(osp.join(ROOT, stage.config)), stage.config


def test_prototype_paths_follow_the_convention():
    assert default_prototype_path(
        'configs/gtav2cityscapes/'
        'r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py') == \
        'prototypes/gtav2cityscapes_round2/gtav2cityscapes_st-ca_dlv2.pth'
    assert default_prototype_path('configs/synthetic/st_cu_synthetic.py') == \
        'prototypes/synthetic_round1/synthetic_st-cu_dlv2.pth'
    # the original README's task name is our gtav2cityscapes: its round-2
    # ST configs write the files the round-2 CKD config reads
    assert default_prototype_path(
        'gta2cs_st-cu-r2_dlv2red-adapter_r101v1c_poly10warm_s0.py') == \
        'prototypes/gtav2cityscapes_round2/gtav2cityscapes_st-cu_dlv2.pth'


CKD_CONFIGS = [p for p in EXPERIMENTS
               if re.match(r'r\d_ckd_', osp.basename(p))]


@pytest.mark.parametrize('path', CKD_CONFIGS, ids=rel)
def test_ckd_configs_read_the_prototypes_their_st_configs_write(path):
    """Each teacher's prototype file is the one cal_prototype.py writes by
    default for the teacher's ST config, which exists, is of the same round
    and setting, and is of the teacher's path."""
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    teachers = cfg.uda.teachers
    assert [t['name'] for t in teachers] == ['cu', 'ca']
    for t in teachers:
        st = t['config']
        assert osp.isfile(osp.join(ROOT, st)), st
        assert osp.basename(st).startswith(f'{name[:2]}_st_{t["name"]}_')
        assert osp.dirname(osp.join(ROOT, st)) == osp.dirname(path)
        assert t['prototypes'] == default_prototype_path(st)
    # the original README's round-2 ST names lead to the same files
    if name.startswith('r2_') and name.endswith('_gtav2cityscapes.py') and '_dlv2_' in name:
        for t in teachers:
            original = osp.join(ROOT, 'configs', 'uda', 'st', f'gta2cs_st-{t["name"]}-r2_'
                                'dlv2red-adapter_r101v1c_poly10warm_s0.py')
            assert default_prototype_path(original) == t['prototypes']


def test_channels_last_option_reaches_the_segmentor():
    """--channels-last of train.py (UDA config: the segmentor the UDA model
    wraps), test.py and the pipeline's stage commands."""
    import importlib.util

    from mmseg_ddb.apis import prepare_train_config
    from mmseg_ddb.apis.test import prepare_test_config
    from mmseg_ddb.errors import ConfigError
    from mmseg_ddb.utils import use_channels_last
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(ROOT, 'tools', 'train.py'))
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    st = osp.join(ROOT, 'configs', 'synthetic', 'st_cu_synthetic.py')
    cfg = prepare_train_config(train_tool.parse_args([st, '--channels-last']))
    wrap_uda(cfg)
    assert cfg.model.type == 'SelfTraining'
    assert cfg.model.segmentor.channels_last is True
    plain = prepare_train_config(train_tool.parse_args([st]))
    assert 'channels_last' not in plain.model
    test_cfg = prepare_test_config(st, channels_last=True)
    assert test_cfg.model.channels_last is True
    other = Config(dict(model=dict(type='EncoderDecoder')))
    with pytest.raises(ConfigError, match="'EncoderDecoder'.*channels-last|"
                       "channels-last.*'EncoderDecoder'"):
        use_channels_last(other.model)
    from mmseg_ddb.pipeline import PipelineRunner
    runner = PipelineRunner(
        osp.join(ROOT, 'configs', 'synthetic', 'ddb_synthetic.py'),
        channels_last=True)
    stage = next(s for s in runner.stages if s.kind == 'train')
    assert '--channels-last' in runner._train_cmd(stage, {}, False, 1, 29500)


def test_segformer_head_option_builds_with_the_feature_contract():
    import torch
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/segformer_mitb5.py'))
    assert cfg.model.decode_head.type == 'DDBSegformerHead'
    shrink_real_network(cfg)
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        logits, feats = model.logits_and_features(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 19, 16, 16) and feats.shape == (1, model.feature_dim, 16, 16)
