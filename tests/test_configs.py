"""Every config parses, names only registered types, and its model builds."""
import glob
import re
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis import wrap_uda
from mmseg_ddb.apis.prototypes import default_prototype_path
from mmseg_ddb.pipeline import build_plan
from mmseg_ddb.utils import iter_dicts
from mmseg_ddb.utils.config import _known_types

from conftest import REPO as ROOT  # noqa: E402
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


@pytest.mark.parametrize('path', EXPERIMENTS, ids=rel)
def test_experiment_config_builds(path):
    cfg = Config.fromfile(path)
    known = _known_types()
    for node in iter_dicts(cfg.to_dict()):
        t = node.get('type')
        if isinstance(t, str):
            assert t in known, f'{rel(path)}: unregistered type {t}'
    # the real configs' model, shrunk so that 50 builds stay fast
    if cfg.model.backbone.depth == 101:
        cfg.merge_from_dict({
            'model.backbone.depth': 18, 'model.backbone.base_channels': 8,
            'model.backbone.stem_channels': 8,
            'model.decode_head.in_channels': 64, 'model.pretrained': None})
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
    if name.startswith('r2_') and name.endswith('_gtav2cityscapes.py'):
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
