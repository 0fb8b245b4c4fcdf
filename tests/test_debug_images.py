"""Watching training: the UDA debug grids (engine/debug_images.py) show what
the step trained on, the hook draws only the iterations it is due and reads
the device only then, TensorBoard holds the scalars and the grids, and
tools/plot_run.py draws the curves of a run."""
import glob
import importlib.util
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, cfg_option_args, host_reads
from mmengine.optim import OptimWrapper
from test_uda import build, raw_batch, seg_cfg  # noqa: F401  (a fixture)
from test_uda_tools import ST_CONFIG, uda_options

import mmseg_ddb  # noqa: F401
from mmseg_ddb.datasets.cityscapes_labels import CITYSCAPES_PALETTE
from mmseg_ddb.engine.debug_images import (
    HEADER,
    PAD,
    TITLE,
    UDADebugImageHook,
    draw_record,
    panel_origin,
)
from mmseg_ddb.utils.images import colorize

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One torch thread, as the tools' tests run: tiny tensors gain nothing
    from more, and the machine may be shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def debug_step(model, data, monkeypatch):
    """One training step that the hook draws; returns the labels of every
    cross-entropy the step computed (what the student trained on)."""
    trained_on = []
    ce_loss = model.ce_loss

    def spy(logits, labels, weight=None):
        trained_on.append(labels.clone())
        return ce_loss(logits, labels, weight)

    monkeypatch.setattr(model, 'ce_loss', spy)
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01))
    model.train()
    model.debug_wanted = True
    model.train_step(data, wrapper)
    return trained_on


def cell(grid, row, column, size=32):
    y, x = panel_origin(row, column, (size, size))
    return grid[y:y + size, x:x + size]


def test_st_grid_shows_what_the_step_trained_on(seg_cfg, monkeypatch):  # noqa: F811
    torch.manual_seed(0)
    model = build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'))
    model.init_weights()
    data = dict(source=raw_batch(n=5, seed=1), target=raw_batch(n=5, seed=2))
    data['source']['data_samples'][0].gt_sem_seg.data[:, :4] = 255
    # the loader's BGR uint8 images, as RGB pictures
    pictures = [x.permute(1, 2, 0).numpy()[..., ::-1] for x in data['source']['inputs']]
    trained_on = debug_step(model, data, monkeypatch)
    grid = draw_record(model.debug_record, *model.norm_mean_std)
    # at most 4 samples: rows of 32x32 panels, 9 columns
    assert grid.shape == (TITLE + HEADER + 4 * (32 + PAD), PAD + 9 * (32 + PAD), 3)
    mixed = trained_on[1]  # the source CE first, then the mixed one
    for r in range(4):
        assert np.array_equal(cell(grid, r, 7), colorize(mixed[r].numpy(), CITYSCAPES_PALETTE))
        assert np.array_equal(cell(grid, r, 0), pictures[r])  # de-normalised
    source_label = cell(grid, 0, 1)
    assert (source_label[:4] == 0).all()  # ignore in black
    assert (source_label[4:].max(axis=-1) > 0).all()


def test_st_grid_with_a_weight_per_pixel(seg_cfg, monkeypatch):  # noqa: F811
    """``pseudo_weight='pixel'``: the quality is a map, drawn as a column
    (1 where the teacher is confident, 0 elsewhere) with its mean in the
    title, instead of a scalar the title could not print."""
    torch.manual_seed(0)
    model = build(dict(type='SelfTraining', segmentor=seg_cfg, mask='cut',
                       pseudo_weight='pixel', pseudo_threshold=0.0))
    model.init_weights()
    data = dict(source=raw_batch(n=2, seed=1), target=raw_batch(n=2, seed=2))
    debug_step(model, data, monkeypatch)
    quality = model.debug_record['quality']
    assert quality.shape == (2, 32, 32) and bool((quality == 1).all())
    grid = draw_record(model.debug_record, *model.norm_mean_std)
    assert grid.shape == (TITLE + HEADER + 2 * (32 + PAD), PAD + 10 * (32 + PAD), 3)
    weight = cell(grid, 0, 5)  # after the confidence: all ones (yellow)
    assert np.array_equal(weight, cell(grid, 1, 5))
    assert weight[..., 0].min() > 200 and weight[..., 2].max() < 100


def test_ckd_grid_shows_the_rectified_ensemble_label(seg_cfg, monkeypatch):  # noqa: F811
    torch.manual_seed(0)
    model = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                       teachers=[dict(name='cu'), dict(name='ca')]))
    data = dict(source=raw_batch(n=2, seed=3), target=raw_batch(n=2, seed=4))
    # random teachers and prototypes (no files); the teachers' BN statistics
    # are the target batch's, so that they label it with several classes
    target = model.data_preprocessor(data, True)['target']['inputs']
    with torch.no_grad():
        model.prototypes.normal_()
        for module in model.teachers.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = 1.0
        for teacher in model.teachers:
            teacher.train()
            teacher.extract_feat(target)
    trained_on = debug_step(model, data, monkeypatch)
    record = model.debug_record
    grid = draw_record(record, *model.norm_mean_std)
    # target, 2 x (label, weight), ensemble, rectified, changed, augmented, prediction
    assert grid.shape == (TITLE + HEADER + 2 * (32 + PAD), PAD + 10 * (32 + PAD), 3)
    label = trained_on[1].numpy()
    changed = label != record['label_before'].numpy()
    assert 0 < changed.mean() < 1  # rectification changed some labels
    for r in range(2):
        assert np.array_equal(cell(grid, r, 6), colorize(label[r], CITYSCAPES_PALETTE))
        changed_panel = cell(grid, r, 7)
        assert (changed_panel[~changed[r]] == 0).all()
        assert np.array_equal(changed_panel[changed[r]],
                              colorize(label[r], CITYSCAPES_PALETTE)[changed[r]])
    for weights in record['teacher_weights']:
        assert weights.shape == (2, 32, 32)
        assert (weights >= 0).all() and (weights <= 1).all()


def test_hook_asks_for_a_record_only_on_the_iterations_it_draws(seg_cfg):  # noqa: F811
    model = build(dict(type='SelfTraining', segmentor=seg_cfg))
    for interval, expected in ((3, {2, 5, 8}), (1, set(range(9))), (0, set())):
        hook, asked = UDADebugImageHook(interval=interval), set()
        for it in range(9):
            hook.before_train_iter(SimpleNamespace(model=model, iter=it), it)
            if model.debug_wanted:
                asked.add(it)
                model.debug_wanted = False
        assert asked == expected, interval
    for bad in (dict(interval=-1), dict(interval=1.5), dict(max_samples=5)):
        with pytest.raises(ValueError, match='UDADebugImageHook'):
            UDADebugImageHook(**bad)


@pytest.fixture(scope='module')
def debug_run(tiny_data, tmp_path_factory):
    """4 ST iterations through tools/train.py (in this process), a grid
    every 2, the log every 2, validation at the end; returns the work dir
    and the iterations (0-based) at which debug_images.py read the device."""
    from mmengine.logging import MessageHub

    def iteration():
        return MessageHub.get_current_instance().get_info('iter')

    work_dir = str(tmp_path_factory.mktemp('debug') / 'st')
    opts = uda_options(tiny_data, **{
        'train_cfg.max_iters': 4, 'train_cfg.val_interval': 4,
        'default_hooks.checkpoint.interval': 4,
        'default_hooks.logger.interval': 2, 'default_hooks.uda_debug.interval': 2})
    with host_reads(iteration) as reads:
        tool('train').main([ST_CONFIG, '--work-dir', work_dir, '--cfg-options',
                            *cfg_option_args(opts)])
    return work_dir, {it for it, _, where in reads if where.startswith('debug_images.py')}


def test_hook_draws_every_interval_and_reads_the_device_only_then(debug_run):
    import matplotlib.pyplot as plt
    work_dir, read_at = debug_run
    grids = sorted(glob.glob(osp.join(work_dir, 'debug_images', '*.png')))
    assert [osp.basename(g) for g in grids] == ['iter_000002.png', 'iter_000004.png']
    assert read_at == {1, 3}
    # batch 2, 128x128 crops, 9 columns
    assert plt.imread(grids[-1]).shape == (TITLE + HEADER + 2 * (128 + PAD),
                                           PAD + 9 * (128 + PAD), 3)


def test_tensorboard_holds_the_scalars_and_the_grids(debug_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    work_dir, _ = debug_run
    events = glob.glob(osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(events[0])
    acc.Reload()
    scalars = set(acc.Tags()['scalars'])
    assert {'loss', 'loss_src', 'loss_mix', 'pseudo_quality', 'lr', 'mIoU'} <= scalars
    assert [e.step for e in acc.Scalars('loss_mix')] == [2, 4]
    assert [e.step for e in acc.Images('uda_debug')] == [2, 4]


def test_plot_run_writes_one_png_of_several_runs(debug_run, tmp_path, capsys):
    from mmseg_ddb.evaluation.curves import curve_keys, read_run
    work_dir, _ = debug_run
    run = read_run(work_dir)
    assert [step for step, _ in run['loss_mix']] == [2, 4]
    assert [step for step, _ in run['mIoU']] == [4]
    assert [k for k, _ in curve_keys([run])] == ['loss', 'loss_src', 'loss_mix',
                                                 'pseudo_quality', 'lr', 'mIoU']
    out = tmp_path / 'curves.png'
    tool('plot_run').main([work_dir, work_dir, '--labels', 'cu', 'ca', '--out', str(out)])
    assert out.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(SystemExit) as exit_:
        tool('plot_run').main([str(tmp_path / 'missing')])
    assert exit_.value.code == 2
    assert 'missing not found' in capsys.readouterr().err
