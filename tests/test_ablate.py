"""``--ablate`` without training: parsing switches and ablation configs,
which stages a switch lands on, and the ablation summary's numbers on
crafted per-seed summaries (the end-to-end run is in test_pipeline.py)."""
import pytest
from test_pipeline_report import pipeline_dict

import mmseg_ddb  # noqa: F401
from mmseg_ddb.errors import ConfigError
from mmseg_ddb.pipeline import PipelineRunner
from mmseg_ddb.pipeline.ablate import (
    ablation_runner,
    ablation_summary,
    downstream_of,
    folder_name,
    format_ablation_summary,
    load_ablations,
    parse_switch,
    target_stages,
    upstream_of,
)
from mmseg_ddb.pipeline.manifest import Manifest


def test_switches_parse_like_cfg_options(tmp_path):
    assert parse_switch('uda.renormalize=True')['options'] == {
        'uda.renormalize': True}
    assert parse_switch('uda.sigma_range=(0.1,1.0)')['options'] == {
        'uda.sigma_range': (0.1, 1.0)}
    assert parse_switch('uda.blur_mode=2d')['options'] == {
        'uda.blur_mode': '2d'}
    for bad in ('uda.renormalize', '=1', 'uda.x='):
        with pytest.raises(ConfigError, match='KEY=VALUE'):
            parse_switch(bad)
    listing = tmp_path / 'ablations.py'
    listing.write_text(
        "ablations = [dict(name='long CKD', options=dict("
        "**{'train_cfg.max_iters': 1200}), stages=['r1_ckd']),\n"
        "              dict(options=dict(**{'uda.use_pl_weight': True}),\n"
        "                   downstream=False)]\n")
    first, second, third = load_ablations([str(listing),
                                           'uda.renormalize=False'])
    assert first == dict(name='long CKD',
                         options={'train_cfg.max_iters': 1200},
                         stages=['r1_ckd'], downstream=True)
    assert second['name'] == 'uda.use_pl_weight=True'
    assert second['downstream'] is False and third['downstream'] is True
    assert third['options'] == {'uda.renormalize': False}
    assert folder_name('long CKD') == 'long_CKD'
    with pytest.raises(ConfigError, match='share a name'):
        load_ablations(['uda.renormalize=True', 'uda.renormalize=True'])
    listing.write_text('ablations = [dict(name="x")]\n')
    with pytest.raises(ConfigError, match='options=dict'):
        load_ablations([str(listing)])
    listing.write_text("ablations = [dict(options=dict(**{'uda.alpha': 0.9}),"
                       " downstream='no')]\n")
    with pytest.raises(ConfigError, match=r'ablations\[0\].downstream'):
        load_ablations([str(listing)])


@pytest.fixture
def runner(tmp_path):
    cfg = tmp_path / 'pipeline.py'
    cfg.write_text(f'pipeline = {pipeline_dict()!r}\n')
    return PipelineRunner(str(cfg), str(tmp_path / 'work'), gpus=0)


def test_a_switch_lands_on_the_stages_whose_config_has_it(runner):
    assert target_stages(runner, parse_switch('uda.renormalize=True')) == [
        'r1_ckd', 'r2_ckd']
    assert target_stages(runner, parse_switch('uda.teacher_bn=eval')) == [
        'r1_st_cu', 'r1_st_ca', 'r2_st_cu', 'r2_st_ca']
    chosen = dict(parse_switch('uda.teacher_bn=eval'), stages=['r2_st_cu'])
    assert target_stages(runner, chosen) == ['r2_st_cu']
    with pytest.raises(ConfigError, match='r1_ckd'):
        target_stages(runner, dict(parse_switch('uda.teacher_bn=eval'),
                                   stages=['r1_ckd']))
    with pytest.raises(ConfigError, match='not a training stage'):
        target_stages(runner, dict(parse_switch('uda.teacher_bn=eval'),
                                   stages=['r1_proto_cu']))


ROUND2 = ['r2_st_cu', 'r2_st_ca', 'r2_proto_cu', 'r2_proto_ca', 'r2_ckd']


def test_the_stages_a_switched_stage_feeds_and_reads(runner):
    assert downstream_of(runner, ['r1_st_cu']) == [
        'r1_proto_cu', 'r1_ckd'] + ROUND2
    assert downstream_of(runner, ['r2_st_ca']) == ['r2_proto_ca', 'r2_ckd']
    assert downstream_of(runner, ['r2_ckd']) == []
    assert upstream_of(runner, ['r1_st_cu']) == ['init', 'r1_st_cu']
    assert upstream_of(runner, ['r1_ckd']) == [
        'init', 'r1_st_cu', 'r1_st_ca', 'r1_proto_cu', 'r1_proto_ca',
        'r1_ckd']
    # round 2 reads the round-1 CKD student, which reads round 1
    assert upstream_of(runner, ['r2_st_cu']) == [
        'init', 'r1_st_cu', 'r1_st_ca', 'r1_proto_cu', 'r1_proto_ca',
        'r1_ckd', 'r2_st_cu']


def finished_until(tmp_path, runner, last):
    """A crafted finished work dir whose stages are done up to ``last``."""
    base = tmp_path / 'base'
    manifest = Manifest(str(base / 'manifest.json'))
    names = [s.name for s in runner.stages]
    for name in names[:names.index(last) + 1]:
        manifest.update(name, status='done', signature=f'sig-{name}')
    return str(base)


def test_without_downstream_a_round_1_work_dir_is_enough(tmp_path, runner):
    """``--no-downstream``: the finished run needs the switched stage and
    what it reads only; the ablation's manifest takes the finished records
    but not the stages downstream of the switched one. With downstream
    (the default) the whole run must be finished, and the error names what
    is not."""
    base = finished_until(tmp_path, runner, 'r1_ckd')
    cfg = runner.config_path
    switch = dict(parse_switch('uda.teacher_bn=eval'), stages=['r1_st_cu'])
    with pytest.raises(ConfigError, match='r2_st_cu, r2_st_ca, r2_proto_cu'
                       r'.*run the pipeline to the end first'):
        ablation_runner(cfg, base, str(tmp_path / 'a'), switch, None,
                        dict(gpus=0))
    ablated, targets = ablation_runner(
        cfg, base, str(tmp_path / 'b'), dict(switch, downstream=False), None,
        dict(gpus=0))
    assert targets == ['r1_st_cu']
    assert ablated.stage('r1_st_cu').overrides == {'uda.teacher_bn': 'eval'}
    assert ablated.stage('r1_st_ca').overrides == {}
    # the finished records it may reuse; not r1_proto_cu and r1_ckd, which
    # read the switched stage and will not rerun
    assert sorted(ablated.manifest.stages) == sorted(
        ['init', 'reference', 'oracle', 'r1_st_cu', 'r1_st_ca',
         'r1_proto_ca'])
    # a round-2 switch without downstream needs round 1 and r2_st_cu
    switch = dict(parse_switch('uda.teacher_bn=eval'), stages=['r2_st_cu'],
                  downstream=False)
    with pytest.raises(ConfigError, match=r'\(stages r2_st_cu not done\); '
                       'run the pipeline until they are done first'):
        ablation_runner(cfg, base, str(tmp_path / 'c'), switch, None,
                        dict(gpus=0))
    base = finished_until(tmp_path, runner, 'r2_st_cu')
    ablated, _ = ablation_runner(cfg, base, str(tmp_path / 'd'), switch,
                                 None, dict(gpus=0))
    assert 'r2_st_cu' in ablated.manifest.stages
    assert 'r2_proto_cu' not in ablated.manifest.stages


def test_the_switch_changes_the_stage_signature_and_command(runner):
    stage = runner.stage('r1_ckd')
    inputs = runner.resolve_inputs(stage, dry=True)
    before = runner.signature(stage, inputs, runner.options(stage, inputs))
    stage.overrides = {'uda.renormalize': True}
    options = runner.options(stage, inputs)
    assert options['uda.renormalize'] is True
    assert runner.signature(stage, inputs, options) != before
    cmd = runner._train_cmd(stage, options, False, 0, 1)
    assert 'uda.renormalize=True' in cmd


def summary(rows):
    return dict(stages=[dict(stage=s, label=s.upper(), mIoU=m,
                             pseudo_labels=None if pl is None else dict(
                                 trained_on='rectified', sources=dict(
                                     rectified=dict(mIoU=pl))))
                        for s, m, pl in rows])


def test_ablation_summary_numbers_by_hand():
    per_seed = {
        0: dict(ablated=summary([('r1_ckd', 24.0, 40.0)]),
                default=summary([('r1_ckd', 21.0, 38.0)]),
                rerun=['r1_ckd']),
        1: dict(ablated=summary([('r1_ckd', 20.0, 36.0)]),
                default=summary([('r1_ckd', 22.0, 37.0)]),
                rerun=['r1_ckd'])}
    out = ablation_summary('cfg', [0, 1], [(parse_switch(
        'uda.renormalize=True'), per_seed)])
    (ablation,) = out['ablations']
    (row,) = ablation['stages']
    assert row['mIoU_per_seed'] == [24.0, 20.0]
    assert row['mIoU_mean'] == 22.0 and row['mIoU_std'] == 2.0
    assert row['default_mean'] == 21.5
    assert row['diff_per_seed'] == [3.0, -2.0] and row['diff_mean'] == 0.5
    assert row['pl_mIoU_mean'] == 38.0 and row['pl_default_mean'] == 37.5
    line = format_ablation_summary(out).splitlines()[-1]
    assert line == ('| uda.renormalize=True | R1_CKD | 22.00 ± 2.00 | 21.50 | '
                    '+0.50 | +3.00 -2.00 | 38.00 (37.50) |')
