"""The pipeline's plan with an oracle, its summary (the share of the
reference -> oracle gap each stage closes, the per-class heat map) and its
multi-seed runs, without training: hand-made rows, metrics and manifests,
and the stage commands and signatures the runner would use."""
import glob
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
from conftest import REPO  # noqa: E402

import mmseg_ddb  # noqa: F401
from mmseg_ddb.errors import ConfigError
from mmseg_ddb.pipeline import PipelineRunner, aggregate_seeds, build_plan
from mmseg_ddb.pipeline.manifest import sha256_text
from mmseg_ddb.pipeline.report import format_summary, gap_closed, per_class_matrix, plot_summary
from mmseg_ddb.utils import load_config

SYNTHETIC = osp.join(REPO, 'configs', 'synthetic')
PIPELINE_TOOL = osp.join(REPO, 'tools', 'ddb_pipeline.py')
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def synthetic(name):
    return osp.join(SYNTHETIC, f'{name}.py')


def pipeline_dict(oracle=True):
    """The synthetic two-round pipeline, with an oracle stage."""
    rounds = [dict(st=dict(cu=synthetic(f'{p}st_cu_synthetic'),
                           ca=synthetic(f'{p}st_ca_synthetic')),
                   ckd=synthetic(f'{p}ckd_synthetic')) for p in ('', 'r2_')]
    pipeline = dict(
        task='synthetic',
        init=dict(config=synthetic('pretrain_synthetic'),
                  key='model.backbone.init_cfg.checkpoint', evaluate=False,
                  label='generic pretraining (init)', shared=True),
        reference=dict(config=synthetic('source_only_ft_synthetic')),
        rounds=rounds, prototype_epochs=4, evaluate=True)
    if oracle:
        pipeline['oracle'] = dict(config=synthetic('oracle_synthetic'))
    return pipeline


@pytest.fixture
def oracle_pipeline(tmp_path):
    """A pipeline config file with init, reference and oracle stages."""
    path = tmp_path / 'pipeline_full.py'
    path.write_text(f'pipeline = {pipeline_dict()!r}\n')
    return str(path)


def tool():
    spec = importlib.util.spec_from_file_location('ddb_pipeline',
                                                  PIPELINE_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(stage, miou, per_class=None, label=None):
    return dict(stage=stage, label=label or stage, mIoU=miou,
                per_class=per_class)


# -- the oracle stage ---------------------------------------------------------
def test_oracle_stage_follows_reference_from_init_and_feeds_nothing():
    stages = build_plan(pipeline_dict())
    names = [s.name for s in stages]
    assert names[:4] == ['init', 'reference', 'oracle', 'r1_st_cu']
    oracle = stages[2]
    assert oracle.kind == 'train' and oracle.evaluate
    assert oracle.label == 'oracle (target labels)'
    assert oracle.config == synthetic('oracle_synthetic')
    # initialised from init exactly as the reference is
    reference = stages[1]
    assert oracle.inputs == reference.inputs == {
        'init': ('init', 'checkpoint')}
    assert oracle.wiring == reference.wiring == {
        'model.backbone.init_cfg.checkpoint': 'init'}
    # no later stage reads its output
    assert [s.name for s in stages
            if any(src == 'oracle' for src, _ in s.inputs.values())] == []
    # dropped on request; the other stages stay as they were
    without = build_plan(pipeline_dict(), oracle=False)
    assert [s.name for s in without] == [n for n in names if n != 'oracle']
    assert without == [s for s in stages if s.name != 'oracle']
    assert build_plan(pipeline_dict(oracle=False)) == without


def test_no_oracle_drops_the_stage_from_runner_and_cli(oracle_pipeline,
                                                       tmp_path, capsys):
    work_dir = str(tmp_path / 'work')
    assert 'oracle' in [s.name for s in
                        PipelineRunner(oracle_pipeline, work_dir).stages]
    runner = PipelineRunner(oracle_pipeline, work_dir, oracle=False)
    assert 'oracle' not in [s.name for s in runner.stages]
    main = tool().main
    main([oracle_pipeline, '--work-dir', work_dir, '--gpus', '0',
          '--dry-run'])
    assert any(ln.startswith('oracle ')
               for ln in capsys.readouterr().out.splitlines())
    main([oracle_pipeline, '--work-dir', work_dir, '--gpus', '0',
          '--dry-run', '--no-oracle'])
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()
             if ln and not ln.startswith((' ', 'pipeline '))]
    assert names == [s.name for s in runner.stages]
    assert 'reference' in names and 'oracle' not in names
    assert not osp.exists(work_dir)


def test_init_wired_into_a_config_without_its_key_fails_early(tmp_path):
    """``tools/train.py`` refuses a ``--cfg-options`` key the config lacks
    only when the stage starts; the pipeline checks its wiring before its
    first stage and names the config to fix."""
    leaf = tmp_path / 'oracle_no_init.py'
    leaf.write_text(f"_base_ = [{synthetic('oracle_synthetic')!r}]\n"
                    "model = dict(backbone=dict(init_cfg=None))\n")
    pipeline = pipeline_dict()
    pipeline['oracle'] = dict(config=str(leaf))
    cfg = tmp_path / 'pipeline.py'
    cfg.write_text(f'pipeline = {pipeline!r}\n')
    runner = PipelineRunner(str(cfg), str(tmp_path / 'work'))
    with pytest.raises(ConfigError, match=r'oracle_no_init\.py.*stage '
                       r'oracle.*model\.backbone\.init_cfg\.checkpoint'):
        runner.run()
    assert not osp.exists(runner.work_dir)  # nothing ran, nothing written


# -- gap closed ---------------------------------------------------------------
def test_gap_closed_by_hand():
    assert gap_closed(30.0, 20.0, 60.0) == pytest.approx(0.25)
    assert gap_closed(20.0, 20.0, 60.0) == 0.0
    assert gap_closed(60.0, 20.0, 60.0) == 1.0
    assert gap_closed(10.0, 20.0, 60.0) == pytest.approx(-0.25)
    assert gap_closed(None, 20.0, 60.0) is None
    assert gap_closed(30.0, None, 60.0) is None
    assert gap_closed(30.0, 20.0, None) is None
    assert gap_closed(30.0, 20.0, 20.0) is None  # no gap
    assert gap_closed(30.0, 40.0, 35.0) is None  # oracle below reference


def test_summary_rows_get_gap_and_per_class(oracle_pipeline, tmp_path,
                                            capsys):
    """``write_summary`` from a hand-made manifest: gap closed per row,
    reference / oracle mIoU, per-class IoU, the table and summary.png."""
    work_dir = tmp_path / 'work'
    runner = PipelineRunner(oracle_pipeline, str(work_dir))
    per_class = dict(road=80.0, car=40.0, sky=None)
    values = dict(init=15.0, reference=20.0, oracle=60.0, r1_st_cu=30.0,
                  r1_ckd=50.0)
    for name, miou in values.items():
        runner.manifest.stages[name] = dict(
            status='done', seconds=3.0, metrics=dict(
                mIoU=miou, mAcc=70.0, per_class=per_class))
    runner.manifest.stages['r2_ckd'] = dict(status='done', metrics=dict(
        mIoU=55.0, per_class=dict(cityscapes=per_class, acdc=per_class)))
    summary = runner.write_summary()
    with open(work_dir / 'summary.json') as f:
        assert json.load(f) == summary
    assert summary['reference_mIoU'] == 20.0
    assert summary['oracle_mIoU'] == 60.0
    rows = {r['stage']: r for r in summary['stages']}
    assert list(rows) == [s.name for s in runner.stages if s.kind == 'train']
    assert rows['r1_st_cu']['gap_closed'] == pytest.approx(0.25)
    assert rows['r1_ckd']['gap_closed'] == pytest.approx(0.75)
    assert rows['init']['gap_closed'] == pytest.approx(-0.125)
    assert rows['reference']['gap_closed'] == 0.0
    assert rows['oracle']['gap_closed'] == 1.0
    assert rows['r1_st_ca']['mIoU'] is None  # not run
    assert rows['r1_st_ca']['gap_closed'] is None
    assert rows['r1_st_ca']['per_class'] is None
    assert rows['r1_st_cu']['per_class'] == per_class
    assert rows['r1_st_cu']['metrics'] == dict(mIoU=30.0, mAcc=70.0)
    # several target sets: kept as they are
    assert rows['r2_ckd']['per_class'] == dict(cityscapes=per_class,
                                               acdc=per_class)
    table = capsys.readouterr().out
    assert 'gap closed' in table.splitlines()[0]
    line = next(ln for ln in table.splitlines() if ln.startswith('R1 ST-cu'))
    assert line.split()[2:4] == ['30.00', '25%'], line
    with open(work_dir / 'summary.png', 'rb') as f:
        assert f.read(8) == PNG_MAGIC
    assert glob.glob(str(work_dir / '.tmp-*')) == []


def test_summary_names_and_shows_the_last_debug_grid_of_each_stage(
        oracle_pipeline, tmp_path, capsys):
    """``summary.json`` rows name each stage's last debug grid (the highest
    iteration, not the last name), summary.md shows them under the chart,
    summary.png lists them below its panels."""
    import matplotlib.pyplot as plt
    work_dir = tmp_path / 'work'
    runner = PipelineRunner(oracle_pipeline, str(work_dir))
    for name in ('reference', 'r1_st_cu', 'r1_ckd'):
        runner.manifest.stages[name] = dict(status='done',
                                            metrics=dict(mIoU=30.0))
    grids = {'r1_st_cu': ['iter_000600.png', 'iter_1000000.png', 'x.png'],
             'r1_ckd': ['iter_000400.png']}
    for stage, names in grids.items():
        folder = work_dir / stage / 'debug_images'
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(PNG_MAGIC)
    summary = runner.write_summary()
    rows = {r['stage']: r for r in summary['stages']}
    assert rows['r1_st_cu']['debug_grid'] == osp.join(
        'r1_st_cu', 'debug_images', 'iter_1000000.png')
    assert rows['r1_ckd']['debug_grid'] == osp.join(
        'r1_ckd', 'debug_images', 'iter_000400.png')
    assert rows['reference']['debug_grid'] is None
    page = (work_dir / 'summary.md').read_text()
    assert '](summary.png)' in page
    for stage in grids:
        assert f'### {rows[stage]["label"]}\n\n![' in page
        assert f']({rows[stage]["debug_grid"]})' in page
    with_grids = plt.imread(str(work_dir / 'summary.png')).shape[0]
    plot_summary([dict(r, debug_grid=None) for r in summary['stages']],
                 str(tmp_path / 'plain.png'))
    assert plt.imread(str(tmp_path / 'plain.png')).shape[0] < with_grids


def test_no_oracle_or_no_reference_means_no_gap(oracle_pipeline, tmp_path,
                                                capsys):
    for dropped in ('oracle', 'reference'):
        runner = PipelineRunner(oracle_pipeline, str(tmp_path / dropped))
        for name in ('init', 'reference', 'oracle', 'r1_st_cu'):
            if name != dropped:
                runner.manifest.stages[name] = dict(
                    status='done', metrics=dict(mIoU=40.0 + len(name)))
        summary = runner.write_summary()
        assert summary[f'{dropped}_mIoU'] is None
        assert [r['gap_closed'] for r in summary['stages']] == [None] * len(
            summary['stages'])
    runner = PipelineRunner(oracle_pipeline, str(tmp_path / 'x'),
                            oracle=False)
    runner.manifest.stages['reference'] = dict(status='done',
                                               metrics=dict(mIoU=20.0))
    runner.manifest.stages['r1_st_cu'] = dict(status='done',
                                              metrics=dict(mIoU=30.0))
    summary = runner.write_summary()
    assert summary['oracle_mIoU'] is None
    assert all(r['gap_closed'] is None for r in summary['stages'])


def test_format_summary_gap_column():
    rows = [dict(row('a', 30.0), gap_closed=0.48, seconds=12.0),
            dict(row('b', None), gap_closed=None, seconds=None),
            dict(row('c', 10.0), gap_closed=-0.1, seconds=1.0)]
    lines = format_summary(rows).splitlines()
    assert lines[0].split() == ['stage', 'target', 'mIoU', 'gap', 'closed',
                                'time', '(s)']
    assert lines[2].split() == ['a', '30.00', '48%', '12']
    assert lines[3].split() == ['b', '-', '-', '-']
    assert lines[4].split() == ['c', '10.00', '-10%', '1']
    assert lines[2].index('48%') + 3 == lines[0].index('closed') + 6


# -- the per-class heat map ---------------------------------------------------
def test_per_class_matrix_is_the_rows_per_class_values():
    rows = [row('init', 10.0, dict(road=90.0, car=20.5, sky=None)),
            row('r1_st_cu', None),  # not evaluated: skipped
            row('oracle', 60.0, dict(road=95.0, person=33.0, car=70.0)),
            row('r2_ckd', 50.0, dict(cs=dict(road=1.0), acdc=dict(car=2.0))),
            row('empty', 5.0, {})]
    labels, classes, matrix = per_class_matrix(rows)
    assert labels == ['init', 'oracle']
    assert classes == ['road', 'car', 'sky', 'person']
    assert matrix.shape == (2, 4)
    expected = np.array([[90.0, 20.5, np.nan, np.nan],
                         [95.0, 70.0, np.nan, 33.0]])
    np.testing.assert_array_equal(matrix, expected)  # NaN where missing
    labels, classes, matrix = per_class_matrix([row('a', 1.0)])
    assert labels == [] and classes == [] and matrix.shape == (0, 0)


def test_summary_png_is_written_atomically_and_readable(tmp_path,
                                                        monkeypatch):
    import matplotlib.pyplot as plt

    from mmseg_ddb.pipeline import report
    written = []

    def spy(path, data, *args, **kwargs):
        written.append(path)
        return atomic_write(path, data, *args, **kwargs)

    atomic_write = report.atomic_write
    monkeypatch.setattr(report, 'atomic_write', spy)
    classes = [f'class_{i}' for i in range(19)]
    rows = [dict(row(f's{k}', 10.0 * k, {c: float(k * i % 100)
                                         for i, c in enumerate(classes)}),
                 gap_closed=k / 4) for k in range(5)]
    rows.append(row('pending', None))
    path = tmp_path / 'summary.png'
    path.write_bytes(b'old')
    plot_summary(rows, str(path))
    assert written == [str(path)]
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = plt.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 300  # two panels
    assert [p.name for p in tmp_path.iterdir()] == ['summary.png']
    # bars only: no per-class values
    plot_summary([row('a', 20.0), row('b', 30.0)], str(path))
    assert plt.imread(str(path)).shape[0] < image.shape[0]
    assert [p.name for p in tmp_path.iterdir()] == ['summary.png']


# -- several seeds ------------------------------------------------------------
def seed_summary(values, gaps=None, per_class=None):
    gaps = gaps or {}
    return dict(config='c.py', stages=[
        dict(row(name, miou, (per_class or {}).get(name), label=name.upper()),
             gap_closed=gaps.get(name)) for name, miou in values.items()])


def test_aggregate_seeds_mean_population_std_and_missing_stage():
    summaries = {
        0: seed_summary(dict(reference=20.0, oracle=60.0, r1_ckd=30.0),
                        gaps=dict(reference=0.0, oracle=1.0, r1_ckd=0.25),
                        per_class=dict(r1_ckd=dict(road=80.0, car=10.0))),
        1: seed_summary(dict(reference=22.0, oracle=62.0, r1_ckd=34.0),
                        gaps=dict(reference=0.0, oracle=1.0, r1_ckd=0.3),
                        per_class=dict(r1_ckd=dict(road=90.0, car=None))),
        # an older work dir: no oracle stage, r1_ckd not evaluated
        2: seed_summary(dict(reference=24.0, r1_ckd=None)),
    }
    agg = aggregate_seeds('c.py', summaries)
    assert agg['config'] == 'c.py' and agg['seeds'] == [0, 1, 2]
    stages = {s['stage']: s for s in agg['stages']}
    assert list(stages) == ['reference', 'oracle', 'r1_ckd']
    ref = stages['reference']
    assert ref['label'] == 'REFERENCE'
    assert ref['mIoU_per_seed'] == [20.0, 22.0, 24.0]
    assert ref['mIoU_mean'] == pytest.approx(22.0)
    # population std (ddof=0): sqrt((4 + 0 + 4) / 3), not sqrt(8 / 2)
    assert ref['mIoU_std'] == pytest.approx(math.sqrt(8 / 3))
    oracle = stages['oracle']
    assert oracle['mIoU_per_seed'] == [60.0, 62.0, None]
    assert oracle['mIoU_mean'] == pytest.approx(61.0)
    assert oracle['mIoU_std'] == pytest.approx(1.0)
    ckd = stages['r1_ckd']
    assert ckd['mIoU_per_seed'] == [30.0, 34.0, None]
    assert ckd['mIoU_mean'] == pytest.approx(32.0)
    assert ckd['mIoU_std'] == pytest.approx(2.0)
    assert ckd['gap_closed_per_seed'] == [0.25, 0.3, None]
    assert ckd['gap_closed_mean'] == pytest.approx(0.275)
    assert ckd['per_class_mean'] == dict(road=pytest.approx(85.0), car=10.0)
    assert ref['per_class_mean'] is None
    # a stage no seed evaluated
    agg = aggregate_seeds('c.py', {0: seed_summary(dict(x=None)),
                                   1: seed_summary(dict(y=1.0))})
    x = agg['stages'][0]
    assert x['mIoU_per_seed'] == [None, None]
    assert x['mIoU_mean'] is None and x['mIoU_std'] is None
    assert x['gap_closed_mean'] is None


def test_seed_reaches_train_commands_and_signatures(oracle_pipeline):
    plain = PipelineRunner(oracle_pipeline, '/tmp/unused-work-dir')
    seeded = {s: PipelineRunner(oracle_pipeline, '/tmp/unused-work-dir',
                                seed=s) for s in (0, 1)}
    stage = plain.stage('r1_st_cu')
    for s, runner in seeded.items():
        cmd = runner._train_cmd(stage, {'a.b': 'c'}, False, 1, 29500)
        i = cmd.index('--seed')
        assert cmd[i + 1] == str(s)
        cmd = runner._train_cmd(stage, {}, False, 2, 29500)  # torchrun
        assert cmd[cmd.index('--seed') + 1] == str(s)
    assert '--seed' not in plain._train_cmd(stage, {}, False, 1, 29500)
    assert '--seed' not in seeded[0].launch.prototype_cmd(
        stage.config, 'x.pth', 4, 'p.pth')  # cal_prototype.py has none
    inputs = dict(init=dict(path='x.pth', sha256='0'))
    options = {'model.backbone.init_cfg.checkpoint': 'x.pth'}
    sigs = {s: r.signature(stage, inputs, options)
            for s, r in seeded.items()}
    base = plain.signature(stage, inputs, options)
    assert len({sigs[0], sigs[1], base}) == 3
    # without a seed the signature is the one manifests already hold
    cfg = load_config(stage.config)
    cfg.merge_from_dict(options)
    assert base == sha256_text(json.dumps(dict(
        kind='train', config=cfg.to_dict(), inputs=dict(init='0'),
        epochs=None, evaluate=True), sort_keys=True, default=str))
    # prototype stages get no seed: their signature follows their input
    proto = plain.stage('r1_proto_cu')
    ckpt = dict(checkpoint=dict(path='x.pth', sha256='1'))
    assert seeded[0].signature(proto, ckpt, {}) == plain.signature(
        proto, ckpt, {})


def test_seeds_run_each_pipeline_into_its_folder_and_summarise(
        oracle_pipeline, tmp_path, monkeypatch, capsys):
    """``--seeds 0 1``: one pipeline per seed, in ``WORK_DIR/seed<S>``,
    each given its seed and ``--only``; then the summary over seeds. The
    runs are stubbed (no training)."""
    calls = []

    def fake_run(self, start=None, only=None):
        calls.append((self.launch.seed, self.work_dir, start, only))
        s = self.launch.seed
        if s is None:  # the shared init, run once
            return dict(stages=[])
        return seed_summary(dict(reference=20.0 + s, oracle=60.0,
                                 r1_ckd=30.0 + 2 * s),
                            per_class=dict(r1_ckd=dict(road=50.0 + s)))

    monkeypatch.setattr(PipelineRunner, 'run', fake_run)
    work_dir = tmp_path / 'work'
    summary = tool().main([oracle_pipeline, '--work-dir', str(work_dir),
                           '--gpus', '0', '--seeds', '0', '1', '--only',
                           'r1_ckd'])
    assert calls == [(None, str(work_dir / 'shared'), None, None),
                     (0, str(work_dir / 'seed0'), None, 'r1_ckd'),
                     (1, str(work_dir / 'seed1'), None, 'r1_ckd')]
    with open(work_dir / 'summary.json') as f:
        assert json.load(f) == summary
    assert summary['seeds'] == [0, 1]
    ckd = next(s for s in summary['stages'] if s['stage'] == 'r1_ckd')
    assert ckd['mIoU_per_seed'] == [30.0, 32.0]
    assert ckd['mIoU_mean'] == 31.0 and ckd['mIoU_std'] == 1.0
    assert ckd['per_class_mean'] == dict(road=50.5)
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith('R1_CKD'))
    assert line.split()[1:6] == ['31.00', '±', '1.00', '30.00', '32.00']
    assert (work_dir / 'summary.png').read_bytes()[:8] == PNG_MAGIC
    assert glob.glob(str(work_dir / '**' / '.tmp-*'), recursive=True) == []


def test_seeds_dry_run_prints_each_seed_plan(oracle_pipeline, tmp_path,
                                             capsys):
    work_dir = tmp_path / 'work'
    main = tool().main
    main([oracle_pipeline, '--work-dir', str(work_dir), '--gpus', '0',
          '--dry-run', '--seeds', '0', '1'])
    heads = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.startswith('pipeline ')]
    assert heads == [f'pipeline {oracle_pipeline} -> {work_dir}/seed{s} '
                     f'(seed {s})' for s in (0, 1)]
    assert not work_dir.exists()
    for args in (['--seeds', '0', '0'], ['--seeds', '0', '--only', 'r9']):
        with pytest.raises(SystemExit) as exc:
            main([oracle_pipeline, '--work-dir', str(work_dir), '--gpus',
                  '0', *args])
        assert exc.value.code == 2, args
    assert not work_dir.exists()


def test_repository_pipeline_config_matches_the_tests():
    """The shipped synthetic pipeline is the one these tests plan."""
    shipped = load_config(synthetic('ddb_synthetic')).pipeline.to_dict()
    expected = pipeline_dict()
    for key in ('init', 'reference', 'oracle'):
        spec = dict(shipped[key], config=synthetic(
            osp.splitext(osp.basename(shipped[key]['config']))[0]))
        assert spec == expected[key], key


def test_init_key_label_evaluate_and_shared():
    plan = {s.name: s for s in build_plan(pipeline_dict())}
    init = plan['init']
    assert (init.label, init.evaluate, init.shared) == (
        'generic pretraining (init)', False, True)
    for name, stage in plan.items():
        if stage.kind == 'train' and name != 'init':
            assert stage.wiring['model.backbone.init_cfg.checkpoint'] == \
                'init', name
            assert 'model.init_cfg.checkpoint' not in stage.wiring
            assert not stage.shared and stage.evaluate, name
    # the defaults: the whole model, evaluated, one per seed
    default = dict(pipeline_dict(), init=dict(
        config=synthetic('source_only_synthetic')))
    plan = {s.name: s for s in build_plan(default)}
    assert (plan['init'].label, plan['init'].evaluate, plan['init'].shared) \
        == ('source-only (init)', True, False)
    assert plan['r1_ckd'].wiring['model.init_cfg.checkpoint'] == 'init'
    with pytest.raises(ConfigError, match='init.key'):
        build_plan(dict(pipeline_dict(), init=dict(
            config=synthetic('pretrain_synthetic'), key='backbone')))


def test_shared_init_gets_no_seed_and_is_run_once_for_every_seed(
        oracle_pipeline, tmp_path, monkeypatch):
    """With --seeds, the shared init stage trains once in WORK_DIR/shared
    without --seed, its signature has no seed, and every seed's manifest
    takes its record (so each seed skips it)."""
    seeded = PipelineRunner(oracle_pipeline, '/tmp/unused', seed=3)
    init, st = seeded.stage('init'), seeded.stage('r1_st_cu')
    assert '--seed' not in seeded._train_cmd(init, {}, False, 1, 29500)
    assert '--seed' in seeded._train_cmd(st, {}, False, 1, 29500)
    plain = PipelineRunner(oracle_pipeline, '/tmp/unused')
    assert seeded.signature(init, {}, {}) == plain.signature(init, {}, {})
    inputs = dict(init=dict(path='x.pth', sha256='0'))
    assert seeded.signature(st, inputs, {}) != plain.signature(st, inputs,
                                                               {})
    from mmseg_ddb.pipeline import seeds as seeds_module
    runs, manifests = [], {}

    def fake_run(self, start=None, only=None):
        runs.append((self.launch.seed, self.work_dir,
                     [s.name for s in self.stages]))
        if [s.name for s in self.stages] == ['init']:
            self.manifest.update('init', status='done', signature='sig',
                                 outputs=dict(checkpoint=dict(
                                     path='/shared/iter_1.pth', sha256='1')))
        else:
            manifests[self.launch.seed] = dict(self.manifest.stages)
        return dict(stages=[])

    monkeypatch.setattr(PipelineRunner, 'run', fake_run)
    work_dir = tmp_path / 'work'
    seeds_module.run_seeds(oracle_pipeline, str(work_dir), [0, 1], gpus=0)
    assert [r[:2] for r in runs] == [(None, str(work_dir / 'shared')),
                                     (0, str(work_dir / 'seed0')),
                                     (1, str(work_dir / 'seed1'))]
    assert runs[0][2] == ['init']
    for seed in (0, 1):
        assert manifests[seed]['init']['outputs']['checkpoint']['path'] == \
            '/shared/iter_1.pth'
        assert manifests[seed]['init']['signature'] == 'sig'
