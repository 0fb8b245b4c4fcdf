"""Pseudo-label monitoring (models/uda/monitor.py, engine/monitor_hook.py,
UDADataset(target_labels=True)): exact numbers on a hand-made case, and
proof that it never touches training: the same loss and gradients with it on
and off, the same crops with the target's labels loaded and without."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from test_uda import batch, build, seg_cfg  # noqa: F401 (fixture)

import mmseg_ddb  # noqa: F401
from mmseg_ddb.errors import ConfigError
from mmseg_ddb.models.uda.monitor import (
    MONITOR_FIELD,
    PseudoLabelMonitor,
    monitor_report,
    monitor_self_training,
)
from mmseg_ddb.models.uda.teacher import pseudo_label_and_confidence
from mmseg_ddb.utils import save_prototypes


def test_self_training_scores_on_a_hand_made_case():
    # 3 classes, one 2x2 image; argmax [[0, 1], [2, 2]], pixel (0, 1) is not
    # confident (0.45 < 0.968), the others are (~0.9999)
    logits = torch.tensor([[[[10., 0.], [0., 0.]],
                            [[0., .5], [0., 0.]],
                            [[0., 0.], [10., 10.]]]])
    pseudo, confidence = pseudo_label_and_confidence(logits)
    truth = torch.tensor([[[0, 1], [1, 255]]])
    monitor = PseudoLabelMonitor(3, 255, threshold=0.968)
    out = monitor_self_training(monitor, confidence, pseudo, truth, 0.968)
    # all labelled pixels: 2 of 3 right; IoU 1, 1/2, 0 -> 50
    assert out['pl_teacher_acc'].item() == pytest.approx(200 / 3)
    assert out['pl_teacher_miou'].item() == pytest.approx(50.0)
    # confident labelled pixels (0, 0) and (1, 0): 1 of 2; IoU 1, 0, 0
    assert out['pl_teacher_confident_acc'].item() == pytest.approx(50.0)
    assert out['pl_teacher_confident_miou'].item() == pytest.approx(100 / 3)
    assert out['pl_confident_share'].item() == pytest.approx(2 / 3)
    # a second batch adds to the stage's matrices
    monitor_self_training(monitor, confidence, pseudo, truth, 0.968)
    assert monitor.totals['teacher'].tolist() == [[2, 0, 0], [0, 2, 2],
                                                  [0, 0, 0]]
    report = monitor_report(monitor.state(), ['a', 'b', 'c'], 0.968)
    assert report['trained_on'] == 'teacher'
    assert report['confident_share'] == pytest.approx(2 / 3)
    teacher = report['sources']['teacher']
    assert teacher['pixels'] == 6
    assert teacher['aAcc'] == pytest.approx(200 / 3)
    assert teacher['per_class'] == pytest.approx(dict(a=100.0, b=50.0,
                                                      c=0.0))
    confident = report['sources']['teacher_confident']['per_class']
    assert confident == pytest.approx(dict(a=100.0, b=0.0, c=0.0))
    json.dumps(report)  # plain JSON types


def test_a_batch_without_labelled_pixels_logs_zero_and_reports_none():
    monitor = PseudoLabelMonitor(2)
    out = monitor.add(dict(x=torch.zeros(1, 2, 2, dtype=torch.long)),
                      torch.full((1, 2, 2), 255))
    assert out['pl_x_acc'].item() == 0 and out['pl_x_miou'].item() == 0
    report = monitor_report(monitor.state(), ['a', 'b'])
    assert report['sources']['x']['mIoU'] is None
    assert report['sources']['x']['aAcc'] is None


def labelled(data, seed):
    """``data`` with its target labels in MONITOR_FIELD (another draw than
    its ``gt_sem_seg``, which no UDA loss reads either)."""
    g = torch.Generator().manual_seed(seed)
    data = copy.deepcopy(data)
    for s in data['data_samples']:
        s.set_field(PixelData(data=torch.randint(
            0, 19, s.gt_sem_seg.data.shape, generator=g)), MONITOR_FIELD)
    return data


def step(model, source, target):
    """One step's losses and every gradient, from a fixed RNG state."""
    torch.manual_seed(123)
    model.zero_grad(set_to_none=True)
    losses = model.loss(source, target)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return losses, grads


def assert_same_step(off, on, source, target):
    losses_off, grads_off = step(off, source, target)
    losses_on, grads_on = step(on, source, labelled(target, 9))
    for key, value in losses_off.items():
        assert torch.equal(value, losses_on[key]), key
    assert grads_off.keys() == grads_on.keys() and grads_off
    for name, grad in grads_off.items():
        assert torch.equal(grad, grads_on[name]), name
    return losses_on


def twins(cfg):
    """The same model (same weights) with monitoring off and on."""
    torch.manual_seed(0)
    off = build(cfg)
    off.init_weights()
    on = build(dict(cfg, monitor_pseudo_labels=True))
    on.load_state_dict(off.state_dict())
    off.train()
    on.train()
    return off, on


@pytest.mark.parametrize('mask', ['cut', 'class'])
def test_self_training_step_is_the_same_with_monitoring_on(seg_cfg,  # noqa: F811
                                                           mask):
    off, on = twins(dict(type='SelfTraining', segmentor=seg_cfg, mask=mask,
                         pseudo_threshold=0.1))
    for i in range(2):  # the second step also updates the EMA
        src, tgt = batch(seed=2 * i), batch(seed=2 * i + 1)
        losses = assert_same_step(off, on, src, tgt)
    assert {'pl_teacher_acc', 'pl_teacher_miou', 'pl_teacher_confident_acc',
            'pl_teacher_confident_miou', 'pl_confident_share'} <= set(losses)
    assert 'pl_teacher_acc' not in step(off, src, tgt)[0]
    assert int(on.pl_monitor.totals['teacher'].sum()) == 2 * 2 * 32 * 32


@pytest.fixture
def teachers(seg_cfg, tmp_path):  # noqa: F811
    specs = []
    for i, name in enumerate(('cu', 'ca')):
        torch.manual_seed(10 + i)
        st = build(dict(type='SelfTraining', segmentor=seg_cfg))
        st.init_weights()
        ckpt = str(tmp_path / f'st_{name}.pth')
        torch.save(dict(state_dict=st.state_dict()), ckpt)
        protos = str(tmp_path / f'proto_{name}.pth')
        save_prototypes(protos, torch.randn(19, 16), dict(name=name))
        specs.append(dict(name=name, checkpoint=ckpt, prototypes=protos))
    return specs


def test_distillation_step_is_the_same_with_monitoring_on(seg_cfg,  # noqa: F811
                                                          teachers):
    from mmseg_ddb.models.uda.prototypes import ensemble_pseudo_label
    off, on = twins(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                         teachers=teachers))
    with torch.no_grad():  # teacher cu: flat logits, so rectification
        for model in (off, on):  # decides its ensemble's label
            model.teachers[0].decode_head.conv_seg.weight.zero_()
            model.teachers[0].decode_head.conv_seg.bias.zero_()
    src, tgt = batch(seed=1), batch(seed=2)
    losses = assert_same_step(off, on, src, tgt)
    truth = labelled(tgt, 9)['data_samples']
    truth = torch.stack([s.get(MONITOR_FIELD).data[0] for s in truth])
    logits, probs, _ = on.teacher_outputs(tgt['inputs'])
    rectified, _ = ensemble_pseudo_label(probs)
    plain, _ = ensemble_pseudo_label([z.softmax(1) for z in logits])
    assert not torch.equal(rectified, plain)  # the two are told apart
    expected = dict(cu=logits[0].argmax(1), ca=logits[1].argmax(1),
                    plain=plain, rectified=rectified)
    for name, labels in expected.items():
        acc = 100 * (labels == truth).double().mean()
        assert losses[f'pl_{name}_acc'].item() == pytest.approx(acc.item())
        assert f'pl_{name}_miou' in losses


def test_monitoring_without_target_labels_says_what_to_set(seg_cfg):  # noqa: F811
    st = build(dict(type='SelfTraining', segmentor=seg_cfg,
                    monitor_pseudo_labels=True))
    with pytest.raises(ConfigError, match='target_labels=True'):
        st.loss(batch(seed=1), batch(seed=2))


# -- the dataset ----------------------------------------------------------------
def uda_dataset(root, target_labels, seg_map_path='gtFine/train'):
    from mmseg_ddb.datasets.uda_dataset import UDADataset
    pipe = [dict(type='DDBLoadImageFromFile'),
            dict(type='RandomCrop', crop_size=(32, 32)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs')]
    prefix = dict(img_path='leftImg8bit/train')
    if seg_map_path:
        prefix['seg_map_path'] = seg_map_path
    return UDADataset(
        source=dict(type='GTADataset', data_root=osp.join(root, 'gta'),
                    pipeline=pipe[:1] + [dict(type='DDBLoadAnnotations')] +
                    pipe[1:]),
        target=dict(type='DDBCityscapesDataset',
                    data_root=osp.join(root, 'cs'), data_prefix=prefix,
                    pipeline=pipe),
        target_labels=target_labels)


@pytest.fixture(scope='module')
def labelled_target(tmp_path_factory):
    from conftest import write_cityscapes, write_gta
    root = str(tmp_path_factory.mktemp('monitor_data'))
    write_gta(osp.join(root, 'gta'), 3)
    write_cityscapes(osp.join(root, 'cs'), 4, split='train')
    return root


def test_target_labels_leave_the_images_and_crops_unchanged(labelled_target):
    import cv2
    plain = uda_dataset(labelled_target, False)
    with_labels = uda_dataset(labelled_target, True)
    for idx in range(6):
        np.random.seed(idx)
        a = plain[idx % len(plain)]
        np.random.seed(idx)
        b = with_labels[idx % len(with_labels)]
        for domain in ('source', 'target'):
            assert torch.equal(a[domain]['inputs'], b[domain]['inputs'])
        assert MONITOR_FIELD not in a['target']['data_samples']
        sample = b['target']['data_samples']
        assert 'gt_sem_seg' not in sample  # no loss can read it
        label = sample.get(MONITOR_FIELD).data[0].numpy()
        # the label is the crop of the image's own label file
        full = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
        image = cv2.imread(sample.img_path)
        crop = b['target']['inputs'].permute(1, 2, 0).numpy()
        if sample.flip:
            crop, label = crop[:, ::-1], label[:, ::-1]
        y, x = sample.img_shape[0], sample.img_shape[1]
        found = [(i, j) for i in range(image.shape[0] - y + 1)
                 for j in range(image.shape[1] - x + 1)
                 if np.array_equal(image[i:i + y, j:j + x], crop)]
        assert found
        i, j = found[0]
        assert np.array_equal(full[i:i + y, j:j + x], label)


def test_target_labels_need_the_label_folder(labelled_target):
    with pytest.raises(ConfigError, match='seg_map_path'):
        uda_dataset(labelled_target, True, seg_map_path=None)


# -- the hook -------------------------------------------------------------------
def test_hook_writes_the_stage_report_and_resumes_the_sums(tmp_path):
    from types import SimpleNamespace

    from mmseg_ddb.engine.monitor_hook import CHECKPOINT_KEY, MONITOR_FILE, PseudoLabelMonitorHook
    monitor = PseudoLabelMonitor(2, threshold=0.5)
    monitor.add(dict(teacher=torch.tensor([[0, 1]])), torch.tensor([[0, 0]]))
    model = torch.nn.Linear(1, 1)
    model.pl_monitor = monitor
    runner = SimpleNamespace(
        model=model, iter=4, work_dir=str(tmp_path),
        train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=('road', 'car')))))
    hook = PseudoLabelMonitorHook()
    checkpoint = dict(meta=dict(iter=4))
    hook.before_checkpoint_every_rank(runner)
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint[CHECKPOINT_KEY]['teacher'].tolist() == [[1, 1], [0, 0]]
    # a resumed stage continues from the checkpoint's sums
    model.pl_monitor = fresh = PseudoLabelMonitor(2, threshold=0.5)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    fresh.add(dict(teacher=torch.tensor([[1, 1]])), torch.tensor([[1, 1]]))
    hook.after_train(runner)
    with open(osp.join(str(tmp_path), MONITOR_FILE)) as f:
        report = json.load(f)
    teacher = report['sources']['teacher']
    assert teacher['pixels'] == 4 and teacher['aAcc'] == pytest.approx(75)
    # road: tp 1, union 2; car: tp 2, union 3
    assert teacher['per_class'] == pytest.approx(dict(road=50.0,
                                                      car=200 / 3))
    # --load-from (iteration 0) counts from zero
    model.pl_monitor = other = PseudoLabelMonitor(2)
    runner.iter = 0
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert other.totals == {}


def test_target_labels_can_name_the_label_folder(labelled_target):
    named = uda_dataset(labelled_target, 'gtFine/train', seg_map_path=None)
    np.random.seed(0)
    sample = named[0]['target']['data_samples']
    assert sample.get(MONITOR_FIELD).data.shape[-2:] == (32, 32)


def test_the_cityscapes_recipe_keys_exist_in_the_real_configs():
    """README's one-line recipe sets keys that the real configs have, so
    tools/train.py's --cfg-options check accepts them; off by default."""
    from conftest import REPO
    from mmengine.config import Config

    from mmseg_ddb.utils import check_cfg_options
    for name in ('r1_st_cu', 'r1_ckd'):
        cfg = Config.fromfile(osp.join(
            REPO, 'configs', 'gtav2cityscapes',
            f'{name}_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'))
        assert cfg.uda.monitor_pseudo_labels is False
        assert cfg.train_dataloader.dataset.target_labels is False
        check_cfg_options(cfg, {'uda.monitor_pseudo_labels': True,
                                'train_dataloader.dataset.target_labels':
                                'gtFine/train'})


def test_missing_target_labels_say_how_to_train_without_them(tmp_path):
    from conftest import write_cityscapes, write_gta

    from mmseg_ddb.errors import DataError
    root = str(tmp_path)
    write_gta(osp.join(root, 'gta'), 1)
    write_cityscapes(osp.join(root, 'cs'), 1, split='train')
    import os
    for dirpath, _, files in os.walk(osp.join(root, 'cs', 'gtFine')):
        for name in files:
            os.remove(osp.join(dirpath, name))
    with pytest.raises(DataError, match='target_labels'):
        uda_dataset(root, True)
