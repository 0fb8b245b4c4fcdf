"""Stage 1 (SelfTraining) and Stage 2 (CrossPathDistillation) segmentors on
tiny CPU tensors: the step does what METHOD.md 2.3 / 2.5 say, the state a
resume needs is in the checkpoint, and bad teacher files are refused."""
import copy
import os.path as osp

import pytest
import torch
from conftest import REPO  # noqa: E402
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmseg_ddb  # noqa: F401
from mmseg_ddb.errors import CheckpointError
from mmseg_ddb.models.uda.teacher import ema_alpha
from mmseg_ddb.utils import load_model_weights, save_prototypes


@pytest.fixture(scope='module')
def seg_cfg():
    init_default_scope('mmseg')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/deeplabv2red_r18v1c_tiny.py'))
    model = cfg.model
    model.backbone.update(base_channels=8, stem_channels=8)
    model.decode_head.update(in_channels=64, aspp_channels=8, channels=16)
    model.data_preprocessor.size = (32, 32)
    return model


def build(cfg):
    from mmseg.registry import MODELS
    return MODELS.build(copy.deepcopy(cfg))


def batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 19, (1, size, size), generator=g))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size),
                            padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return dict(inputs=torch.randn(n, 3, size, size, generator=g),
                data_samples=samples)


def test_self_training_step_and_ema(seg_cfg):
    torch.manual_seed(0)
    st = build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'))
    st.init_weights()
    for e, p in zip(st.ema_model.parameters(), st.model.parameters()):
        assert torch.equal(e, p)  # the EMA starts as the student
        assert not e.requires_grad
    opt = torch.optim.SGD([p for p in st.parameters() if p.requires_grad],
                          lr=0.1)
    st.train()
    losses = st.loss(batch(seed=1), batch(seed=2))
    assert set(losses) == {'loss_src', 'loss_mix', 'pseudo_quality'}
    assert 0 <= float(losses['pseudo_quality']) <= 1
    (losses['loss_src'] + losses['loss_mix']).backward()
    opt.step()
    assert st.local_iter == 1
    ema_before = [e.clone() for e in st.ema_model.parameters()]
    student = [p.detach().clone() for p in st.model.parameters()]
    st.loss(batch(seed=3), batch(seed=4))  # EMA update happens first
    a = ema_alpha(1)  # 0.5
    for e, e0, p in zip(st.ema_model.parameters(), ema_before, student):
        assert torch.allclose(e, a * e0 + (1 - a) * p, atol=1e-6)
    assert st.local_iter == 2


def test_teacher_labels_with_train_mode_bn_and_no_dropout(seg_cfg):
    st = build(dict(type='SelfTraining', segmentor=seg_cfg))
    st.eval()
    st.pseudo_label(batch()['inputs'])
    assert st.ema_model.training  # BN batch statistics, as the original
    assert not st.ema_model.decode_head.dropout.training
    st_eval = build(dict(type='SelfTraining', segmentor=seg_cfg,
                         teacher_bn='eval'))
    st_eval.pseudo_label(batch()['inputs'])
    assert not st_eval.ema_model.training


def test_iteration_counter_is_in_the_checkpoint(seg_cfg):
    st = build(dict(type='SelfTraining', segmentor=seg_cfg))
    st.local_iter = 1234
    sd = st.state_dict()
    fresh = build(dict(type='SelfTraining', segmentor=seg_cfg))
    fresh.load_state_dict(sd)
    assert fresh.local_iter == 1234  # a resume continues the EMA schedule


def test_round_two_starts_from_the_distilled_student(seg_cfg, tmp_path):
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=[dict(name='cu')], proto_rectify=False))
    with torch.no_grad():  # BN statistics unlike a fresh model's
        for name, b in ckd.stu_model.named_buffers():
            if b.is_floating_point():
                b.add_(0.5)
    path = str(tmp_path / 'ckd.pth')
    torch.save(dict(state_dict=ckd.state_dict()), path)
    st = build(dict(type='SelfTraining', segmentor=seg_cfg,
                    distilled_model_path=path))
    st.init_weights()
    for a, b, e in zip(st.model.state_dict().values(),
                       ckd.stu_model.state_dict().values(),
                       st.ema_model.state_dict().values()):
        assert torch.equal(a, b)
        assert torch.equal(e, b)


@pytest.fixture
def teacher_files(seg_cfg, tmp_path):
    """Two ST checkpoints (original layout: model.* + ema_model.*) and
    their prototype files."""
    files = []
    for i, name in enumerate(('cu', 'ca')):
        torch.manual_seed(10 + i)
        st = build(dict(type='SelfTraining', segmentor=seg_cfg))
        st.init_weights()
        with torch.no_grad():  # make the EMA differ from the student
            for p in st.ema_model.parameters():
                p.add_(1.0)
        ckpt = str(tmp_path / f'st_{name}.pth')
        torch.save(dict(state_dict=st.state_dict()), ckpt)
        protos = str(tmp_path / f'proto_{name}.pth')
        save_prototypes(protos, torch.randn(19, 16), dict(name=name))
        files.append(dict(name=name, checkpoint=ckpt, prototypes=protos,
                          st=st))
    return files


def test_ckd_loads_the_st_students_and_their_prototypes(seg_cfg,
                                                        teacher_files):
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=specs))
    ckd.init_weights()
    for teacher, f in zip(ckd.teachers, teacher_files):
        for a, b in zip(teacher.state_dict().values(),
                        f['st'].model.state_dict().values()):
            assert torch.equal(a, b)  # the student, not the EMA
    saved = torch.load(teacher_files[1]['prototypes'])['prototypes']
    assert torch.equal(ckd.prototypes[1], saved)
    ckd.train()
    assert ckd.stu_model.training and not any(t.training
                                              for t in ckd.teachers)
    losses = ckd.loss(batch(seed=5), batch(seed=6))
    assert set(losses) == {'loss_src', 'loss_tgt'}
    assert all(torch.isfinite(v) for v in losses.values())
    assert not any(p.requires_grad for p in ckd.teachers.parameters())


def test_ckd_pseudo_label_is_the_rectified_ensemble(seg_cfg, teacher_files):
    from mmseg_ddb.models.uda.prototypes import ensemble_pseudo_label, rectification_weights
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=specs))
    ckd.init_weights()
    x = batch()['inputs']
    _, probs, _ = ckd.teacher_outputs(x)
    expected = []
    for teacher, protos in zip(ckd.teachers, ckd.prototypes):
        logits, feats = teacher.logits_and_features(x, size=x.shape[2:])
        w = rectification_weights(feats, protos)
        expected.append(w * logits.softmax(1))  # not renormalised
    for p, e in zip(probs, expected):
        assert torch.allclose(p, e, atol=1e-6)
    labels, mean = ensemble_pseudo_label(probs)
    assert torch.equal(labels, ((expected[0] + expected[1]) / 2).argmax(1))


def test_ckd_student_can_start_from_a_teacher(seg_cfg, teacher_files):
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=specs, student_init='teacher'))
    ckd.init_weights()
    for a, b in zip(ckd.stu_model.state_dict().values(),
                    ckd.teachers[0].state_dict().values()):
        assert torch.equal(a, b)


def test_ckd_refuses_bad_teacher_files(seg_cfg, teacher_files, tmp_path):
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    wrong = str(tmp_path / 'wrong.pth')
    save_prototypes(wrong, torch.randn(19, 99), {})
    bad = copy.deepcopy(specs)
    bad[0]['prototypes'] = wrong
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=bad))
    with pytest.raises(CheckpointError, match='wrong.pth.*19, 16'):
        ckd.init_weights()
    missing = copy.deepcopy(specs)
    missing[1]['checkpoint'] = str(tmp_path / 'nope.pth')
    missing[1]['config'] = 'configs/x/r1_st_ca_x.py'
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=missing))
    with pytest.raises(CheckpointError,
                       match=r"nope\.pth.*tools/train\.py configs/x/r1_st_ca"):
        ckd.init_weights()


def test_ckd_checkpoint_loads_into_the_plain_segmentor(seg_cfg,
                                                       teacher_files,
                                                       tmp_path):
    """tools/test.py's loading: the CKD student, no renaming; predictions
    equal the student's own."""
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=specs))
    ckd.init_weights()
    path = str(tmp_path / 'ckd.pth')
    torch.save(dict(state_dict=ckd.state_dict(), meta=dict(iter=1)), path)
    plain = build(seg_cfg)
    assert load_model_weights(plain, path) == 'stu_model.'
    plain.eval()
    ckd.eval()
    x = batch()
    with torch.no_grad():
        a = plain.predict(x['inputs'], copy.deepcopy(x['data_samples']))
        b = ckd.stu_model.predict(x['inputs'],
                                  copy.deepcopy(x['data_samples']))
    for sa, sb in zip(a, b):
        assert torch.equal(sa.pred_sem_seg.data, sb.pred_sem_seg.data)


def test_the_segmentors_preprocessor_wins_over_the_runner_default(seg_cfg):
    """mmengine's Runner passes the config's top-level `data_preprocessor`;
    a stale base value (512 crops) must not pad the tiny 32-pixel crops."""
    st = build(dict(type='SelfTraining', segmentor=seg_cfg,
                    data_preprocessor=dict(type='SegDataPreProcessor',
                                           size=(512, 512))))
    assert tuple(st.data_preprocessor.size) == (32, 32)
    data = st.data_preprocessor(dict(
        source=dict(inputs=[torch.zeros(3, 32, 32, dtype=torch.uint8)],
                    data_samples=batch(1)['data_samples']),
        target=dict(inputs=[torch.zeros(3, 32, 32, dtype=torch.uint8)],
                    data_samples=batch(1)['data_samples'])), True)
    assert data['source']['inputs'].shape[-2:] == (32, 32)


def raw_batch(n=2, size=32, seed=0):
    """A batch as the data loader gives it: uint8 images, CHW."""
    data = batch(n, size, seed)
    data['inputs'] = [(x.clamp(-2, 2) * 60 + 128).to(torch.uint8)
                      for x in data['inputs']]
    return data


@pytest.mark.parametrize('stage', ['cut', 'class', 'ckd'])
def test_training_steps_read_nothing_back_from_the_device(
        seg_cfg, teacher_files, stage):
    """The whole step (preprocessing, teacher / EMA, bridging, augmentation,
    losses, backward, optimizer) copies nothing to the host: on a GPU that
    would wait for the queued kernels (see conftest.host_reads). The one
    read is the order of the colour-jitter operations, drawn with the CPU
    generator (a CPU tensor: no device involved); the first step also reads
    the normalisation constants, once (cached). The first step runs with
    the debug-image hook off and keeps no debug record; the second is one
    the hook draws: it keeps a record, still on the device (the hook reads
    it after the step)."""
    from conftest import host_reads
    from mmengine.optim import OptimWrapper
    if stage == 'ckd':
        specs = [{k: v for k, v in f.items() if k != 'st'}
                 for f in teacher_files]
        model = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                           teachers=specs))
    else:
        model = build(dict(type='SelfTraining', segmentor=seg_cfg,
                           mask=stage))
    model.init_weights()
    model.train()
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    for i in range(2):  # the second step also updates the EMA
        data = dict(source=raw_batch(seed=2 * i),
                    target=raw_batch(seed=2 * i + 1))
        model.debug_wanted = i == 1
        with host_reads() as reads:
            log_vars = model.train_step(data, wrapper)
        assert (model.debug_record is not None) == model.debug_wanted
        allowed = {(None, 'tolist', 'bridging.py:photometric_augment')}
        if i == 0:
            allowed.add((None, 'tolist', 'uda_segmentor.py:norm_mean_std'))
        assert set(reads) <= allowed, reads
        if stage != 'ckd':
            assert reads, 'the jitter order read should have been seen'
    assert all(torch.isfinite(v) for v in log_vars.values())


def test_batches_are_copied_to_the_device_without_blocking(seg_cfg,
                                                           monkeypatch):
    """The preprocessors (plain and two-domain) copy images and labels with
    non_blocking=True: a blocking copy would wait for every queued kernel
    at the start of each step."""
    copies = []
    to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        copies.append(kwargs.get('non_blocking', False))
        return to(self, *args, **kwargs)

    st = build(dict(type='SelfTraining', segmentor=seg_cfg))
    plain = build(seg_cfg)
    assert type(plain.data_preprocessor).__name__ == 'DDBDataPreProcessor'
    two_domains = dict(source=raw_batch(seed=1), target=raw_batch(seed=2))
    one, another = raw_batch(seed=3), raw_batch(seed=3)
    monkeypatch.setattr(torch.Tensor, 'to', spy)
    out = st.data_preprocessor(two_domains, True)
    # 2 domains x 2 samples x (image, label); the plain model likewise
    assert len(copies) == 8 and all(copies)
    copies.clear()
    plain.data_preprocessor(one, True)
    assert len(copies) == 4 and all(copies)
    assert out['source']['inputs'].shape == (2, 3, 32, 32)
    # mmseg's behaviour on request
    copies.clear()
    blocking = build(dict(seg_cfg, data_preprocessor=dict(
        seg_cfg['data_preprocessor'], non_blocking=False)))
    blocking.data_preprocessor(another, True)
    assert len(copies) == 4 and not any(copies)


def test_channels_last_segmentor_and_training_step(seg_cfg):
    """``channels_last=True``: the weights are NHWC, they stay NHWC through
    optimizer steps and the EMA update (student, EMA, SGD momentum), and the
    network computes and learns what the default format does (SGD: AdamW's
    first steps are about sign(gradient), which rounding can flip for the
    gradients near zero)."""
    from mmengine.optim import OptimWrapper

    def conv_weights(module):
        # 3x3 kernels (a 1x1 kernel is contiguous in both formats)
        return [p for p in module.parameters()
                if p.dim() == 4 and p.shape[-1] > 1]

    def is_nhwc(t):
        return t.is_contiguous(memory_format=torch.channels_last) and \
            not t.is_contiguous()

    runs, inits = {}, {}
    for fmt in (False, True):
        torch.manual_seed(0)
        st = build(dict(type='SelfTraining',
                        segmentor=dict(seg_cfg, channels_last=fmt)))
        st.init_weights()
        inits[fmt] = [p.detach().clone() for p in st.parameters()]
        st.train()
        wrapper = OptimWrapper(torch.optim.SGD(
            [p for p in st.parameters() if p.requires_grad], lr=0.01,
            momentum=0.9))
        losses = []
        for i in range(2):
            torch.manual_seed(10 + i)
            data = dict(source=raw_batch(seed=2 * i),
                        target=raw_batch(seed=2 * i + 1))
            losses.append(st.train_step(data, wrapper))
        runs[fmt] = st, losses, wrapper
    st, losses, wrapper = runs[True]
    assert st.model.channels_last and st.ema_model.channels_last
    for module in (st.model, st.ema_model):
        assert all(is_nhwc(w) for w in conv_weights(module))
    assert all(is_nhwc(wrapper_state['momentum_buffer'])
               for p, wrapper_state in st_optimizer_state(wrapper, st))
    ref, ref_losses, _ = runs[False]
    # a seed gives the same initial weights in both formats
    assert all(torch.equal(a, b) for a, b in zip(inits[True], inits[False]))
    assert not any(is_nhwc(w) for w in conv_weights(ref.model))
    for ours, theirs in zip(losses, ref_losses):
        for key in theirs:
            assert torch.allclose(ours[key], theirs[key], rtol=1e-4,
                                  atol=1e-5), key
    for a, b in zip(st.model.parameters(), ref.model.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def st_optimizer_state(wrapper, st):
    """(parameter, optimizer state) of the student's 3x3 conv weights."""
    state = wrapper.optimizer.state
    return [(p, state[p]) for p in st.model.parameters()
            if p.dim() == 4 and p.shape[-1] > 1 and p in state]


class Spy:
    """Wraps a function of a module, recording each call's keyword arguments
    and result."""

    def __init__(self, monkeypatch, module, name):
        self.calls, fn = [], getattr(module, name)

        def spy(*args, **kwargs):
            out = fn(*args, **kwargs)
            self.calls.append(dict(kwargs, args=args, result=out))
            return out
        monkeypatch.setattr(module, name, spy)


def test_pixel_mode_trains_only_on_confident_target_pixels(seg_cfg,
                                                          monkeypatch):
    """pseudo_weight='pixel': the mixed loss weighs source pixels 1, target
    pixels the teacher is confident about 1 and the rest 0; the original's
    'batch_ratio' puts one scalar on every target pixel."""
    from mmseg_ddb.models.uda import self_training
    torch.manual_seed(0)
    st = build(dict(type='SelfTraining', segmentor=seg_cfg, mask='cut',
                    pseudo_weight='pixel'))
    st.init_weights()
    st.train()
    source, target = batch(seed=1), batch(seed=2)
    self_training.set_teacher_mode(st.ema_model, st.teacher_bn)
    conf = torch.softmax(st.ema_model.encode_decode(
        target['inputs'], [dict(img_shape=(32, 32))] * 2), 1).max(1)[0]
    st.pseudo_threshold = float(conf.median())  # half confident, half not
    masks = Spy(monkeypatch, self_training, 'make_mask')
    weights = []
    ce = st.ce_loss
    monkeypatch.setattr(st, 'ce_loss', lambda logits, labels, weight=None:
                        weights.append(weight) or ce(logits, labels, weight))
    losses = st.loss(source, target)
    mask = masks.calls[0]['result'][:, 0].bool()
    expected = torch.where(mask, 1.0, (conf.detach() >= st.pseudo_threshold)
                           .float())
    assert torch.equal(weights[1], expected)
    assert (weights[1][~mask] == 0).any() and (weights[1][~mask] == 1).any()
    assert float(losses['pseudo_quality']) == pytest.approx(
        float((conf >= st.pseudo_threshold).float().mean()))
    with pytest.raises(ValueError, match='pseudo_weight'):
        build(dict(type='SelfTraining', segmentor=seg_cfg,
                   pseudo_weight='confident'))


def test_ckd_confidence_weight_is_off_by_default(seg_cfg, teacher_files,
                                                 monkeypatch):
    """Original CKD: every target pixel weighs 1 (no threshold). With
    use_pl_weight the ensemble's confidence weighs the pixels."""
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=specs))
    ckd.init_weights()
    ckd.train()
    source, target = batch(seed=5), batch(seed=6)
    _, probs, _ = ckd.teacher_outputs(target['inputs'])
    conf = torch.stack(probs).mean(0).max(1)[0]
    weights = []
    ce = ckd.ce_loss
    monkeypatch.setattr(ckd, 'ce_loss', lambda z, y, w=None:
                        weights.append(w) or ce(z, y, w))
    assert ckd.use_pl_weight is False  # the default
    losses = ckd.loss(source, target)
    assert weights[1] is None and 'pseudo_quality' not in losses
    ckd.use_pl_weight, ckd.pseudo_threshold = True, float(conf.median())
    confident = (conf >= ckd.pseudo_threshold).float()
    for mode in ('pixel', 'batch_ratio'):
        ckd.pseudo_weight = mode
        weights.clear()
        losses = ckd.loss(source, target)
        if mode == 'pixel':
            assert torch.equal(weights[1], confident)
        else:
            assert weights[1].shape == ()
            assert float(weights[1]) == pytest.approx(float(confident.mean()))
        assert float(losses['pseudo_quality']) == pytest.approx(
            float(confident.mean()))


ST_LEAF = ('configs/gtav2cityscapes/'
           'r1_st_{}_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')
CKD_LEAF = ('configs/gtav2cityscapes/'
            'r2_ckd_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')


def shipped_uda(config, seg_cfg, **teacher_options):
    """The UDA model a shipped config trains, around the tiny segmentor."""
    from mmseg_ddb.apis import wrap_uda
    cfg = Config.fromfile(osp.join(REPO, config))
    wrap_uda(cfg)
    model = dict(cfg.model)
    model['segmentor'] = seg_cfg
    model.update(teacher_options)
    return build(model)


@pytest.mark.parametrize('path', ['cu', 'ca'])
def test_the_shipped_st_configs_defaults_reach_the_training_step(
        seg_cfg, monkeypatch, path):
    """What a step of the shipped ST configs uses (METHOD.md 2.2, 2.3): a
    0.4-area box (cut) or half the classes (class), colour jitter p 0.8 /
    strength 0.2, blur p 0.5 with sigma in [0.15, 1.15] and the original's
    1xK kernel, threshold 0.968 as one batch weight, EMA alpha 0.99."""
    from mmseg_ddb.models.uda import self_training
    st = shipped_uda(ST_LEAF.format(path), seg_cfg)
    st.init_weights()
    st.train()
    masks = Spy(monkeypatch, self_training, 'make_mask')
    augs = Spy(monkeypatch, self_training, 'photometric_augment')
    alphas = Spy(monkeypatch, self_training, 'ema_alpha')
    labels = Spy(monkeypatch, self_training, 'confidence_weight')
    for seed in (0, 2):
        st.loss(batch(seed=seed), batch(seed=seed + 1))
    assert masks.calls[0]['args'][0] == {'cu': 'cut', 'ca': 'class'}[path]
    assert masks.calls[0]['area_ratio'] == 0.4
    aug = {k: v for k, v in augs.calls[0].items()
           if k not in ('args', 'result')}
    assert aug == dict(jitter_prob=0.8, jitter_strength=0.2, blur_prob=0.5,
                       sigma_range=(0.15, 1.15), blur_mode='horizontal')
    assert st.alpha == 0.99 and st.teacher_bn == 'train'
    # the class's own defaults are the same (a config that omits a key)
    bare = build(dict(type='SelfTraining', segmentor=seg_cfg))
    assert (bare.aug, bare.cut_area, bare.alpha, bare.pseudo_threshold,
            bare.pseudo_weight) == (aug, 0.4, 0.99, 0.968, 'batch_ratio')
    assert [c['args'] for c in alphas.calls] == [(1, 0.99)]
    assert [c['args'][1:] for c in labels.calls] == [(0.968, 'batch_ratio')] * 2
    assert labels.calls[0]['result'].shape == ()  # one weight per batch


def test_the_shipped_ckd_configs_defaults_reach_the_training_step(
        seg_cfg, teacher_files, monkeypatch):
    """CKD of the shipped configs: rectified on probabilities, not
    renormalised, temperature 1, no confidence weight, the same
    augmentation of the student's target crop."""
    from mmseg_ddb.models.uda import distillation
    specs = [{k: v for k, v in f.items() if k != 'st'} for f in teacher_files]
    ckd = shipped_uda(CKD_LEAF, seg_cfg, teachers=specs)
    ckd.init_weights()
    ckd.train()
    augs = Spy(monkeypatch, distillation, 'photometric_augment')
    rect = Spy(monkeypatch, distillation, 'rectify_probabilities')
    ckd.loss(batch(seed=5), batch(seed=6))
    aug = {k: v for k, v in augs.calls[0].items()
           if k not in ('args', 'result')}
    assert aug == dict(jitter_prob=0.8, jitter_strength=0.2, blur_prob=0.5,
                       sigma_range=(0.15, 1.15), blur_mode='horizontal')
    assert len(rect.calls) == 2  # one per teacher, on probabilities
    assert ckd.renormalize is False and ckd.proto_temperature == 1.0
    assert ckd.use_pl_weight is False and ckd.student_init == 'imagenet'
    bare = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                      teachers=specs))
    assert (bare.aug, bare.use_pl_weight, bare.renormalize) == (aug, False,
                                                                False)


def test_the_original_readme_round_two_files_reach_round_two_ckd(
        seg_cfg, teacher_files, tmp_path, monkeypatch):
    """The original README's round 2 by hand: the ST checkpoints copied to
    checkpoints/gta2cs_round2/gta2cs_st-{cu,ca}_dlv2.pth (its names), the
    prototypes written where cal_prototype.py puts them for the original
    README's ST config names. The shipped round-2 CKD config, unchanged,
    finds both and loads the teachers."""
    import os
    import shutil

    from mmseg_ddb.utils.prototype_file import default_prototype_path
    monkeypatch.chdir(tmp_path)
    for f in teacher_files:
        path = f['name']
        ckpt = f'checkpoints/gta2cs_round2/gta2cs_st-{path}_dlv2.pth'
        os.makedirs(osp.dirname(ckpt), exist_ok=True)
        shutil.copy(f['checkpoint'], ckpt)
        protos = default_prototype_path(
            f'configs/uda/st/gta2cs_st-{path}-r2_dlv2red-adapter_r101v1c_'
            'poly10warm_s0.py')
        os.makedirs(osp.dirname(protos), exist_ok=True)
        shutil.copy(f['prototypes'], protos)
    ckd = shipped_uda(CKD_LEAF, seg_cfg)
    ckd.init_weights()
    for teacher, f in zip(ckd.teachers, teacher_files):
        for a, b in zip(teacher.state_dict().values(),
                        f['st'].model.state_dict().values()):
            assert torch.equal(a, b)
    saved = torch.load(teacher_files[1]['prototypes'])['prototypes']
    assert torch.equal(ckd.prototypes[1], saved)
