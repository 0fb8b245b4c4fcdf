"""What makes a run right on GPUs and under DDP, pinned where a CPU can show
it (issue "Runs where its users run it"; DESIGN.md, device rules): resume
reads onto the CPU, each rank keeps its own RNG stream, --load-from does not
restore one, the bf16/fp16 choice is made on the rank's own GPU and only
counts native bf16, --deterministic runs, ranks are seeded differently,
evaluation counts every image once on any number of ranks without files,
the NaN guard stops all ranks together, GPUs are shared by surplus ranks,
loaders pin memory on CUDA, TF32 follows env_cfg, and the teachers' precision
switch. The same behaviours on a real GPU: tests marked ``gpu``."""
import os
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.runner import Runner

import mmseg_ddb  # noqa: F401
from mmseg_ddb import compat
from mmseg_ddb.apis.train import adapt_to_device, shared_gpus, use_amp
from mmseg_ddb.engine import optim as ddb_optim
from mmseg_ddb.engine.hooks import NaNGuardHook, NonFiniteLossError, RNGStateHook
from mmseg_ddb.engine.runner import (
    CUBLAS_WORKSPACE,
    DDBRunner,
    set_tf32,
    step_counters_to_cpu,
    tf32_enabled,
)
from mmseg_ddb.evaluation.metrics import DDBIoUMetric
from mmseg_ddb.utils import amp as ddb_amp

# -- resume ------------------------------------------------------------------


def test_resume_reads_the_checkpoint_onto_the_cpu(monkeypatch):
    """mmengine's default reads it onto get_device() (the GPU), where the RNG
    setters fail and AdamW's step counters cost a sync per group per step."""
    seen = {}

    def resume(self, filename, resume_optimizer, resume_param_scheduler,
               map_location):
        seen.update(filename=filename, map_location=map_location)

    monkeypatch.setattr(Runner, 'resume', resume)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    runner = DDBRunner.__new__(DDBRunner)  # no build: only resume runs
    runner.optim_wrapper = types.SimpleNamespace(optimizer=opt)
    DDBRunner.resume(runner, 'iter_4.pth')
    assert seen == dict(filename='iter_4.pth', map_location='cpu')


def test_step_counters_of_fused_or_capturable_groups_stay_put():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    assert step_counters_to_cpu(opt) == 0  # already on the CPU
    steps = [s['step'] for s in opt.state.values()]
    assert all(isinstance(s, torch.Tensor) and s.device.type == 'cpu'
               for s in steps)
    # a counter off the CPU (a meta tensor stands in for a CUDA one): moved,
    # which for a meta tensor means a copy that fails...
    for state in opt.state.values():
        state['step'] = torch.zeros((), device='meta')
    with pytest.raises((NotImplementedError, RuntimeError)):
        step_counters_to_cpu(opt)
    # ...except in capturable (or fused) groups, which keep it on the device
    opt.param_groups[0]['capturable'] = True
    kept = [s['step'] for s in opt.state.values()]
    assert step_counters_to_cpu(opt) == 0
    assert [s['step'] for s in opt.state.values()] == kept


# -- the RNG hook ------------------------------------------------------------


def _runner(iteration=0):
    return types.SimpleNamespace(
        iter=iteration, logger=types.SimpleNamespace(
            warnings=[], warning=lambda msg: None))


def _saved_by(hook, runner):
    hook.before_checkpoint_every_rank(runner)
    checkpoint = dict(meta=dict(iter=runner.iter))
    hook.before_save_checkpoint(runner, checkpoint)
    return checkpoint


def test_resume_continues_the_random_stream():
    hook = RNGStateHook()
    torch.manual_seed(3)
    checkpoint = _saved_by(hook, _runner(8))
    assert checkpoint['rng_state']['world_size'] == 1
    expected = torch.rand(5)
    torch.manual_seed(99)  # mmengine re-seeds on resume
    hook.after_load_checkpoint(_runner(8), checkpoint)
    hook.before_train_iter(_runner(8), 0)
    assert torch.equal(torch.rand(5), expected)


def _assert_not_restored(hook, runner, checkpoint):
    """The first iteration after loading ``checkpoint`` draws what the run's
    own seed gives, not the saved stream."""
    torch.manual_seed(5)
    expected = torch.rand(5)
    torch.manual_seed(5)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train_iter(runner, 0)
    assert torch.equal(torch.rand(5), expected)


def test_load_from_follows_its_own_seed():
    """--load-from is a new run (iteration 0): the checkpoint's RNG state is
    not restored, whatever iteration it was saved at."""
    hook = RNGStateHook()
    torch.manual_seed(3)
    checkpoint = _saved_by(hook, _runner(600))
    _assert_not_restored(hook, _runner(0), checkpoint)


def test_a_state_saved_by_another_number_of_ranks_is_not_restored():
    hook = RNGStateHook()
    torch.manual_seed(3)
    checkpoint = _saved_by(hook, _runner(8))
    state = checkpoint['rng_state']
    state['ranks'].append(state['ranks'][0])
    state['world_size'] = 2
    _assert_not_restored(hook, _runner(8), checkpoint)


def test_a_checkpoint_of_the_earlier_format_still_resumes():
    torch.manual_seed(3)
    old = dict(meta=dict(iter=8), rng_state=dict(cpu=torch.get_rng_state()))
    expected = torch.rand(5)
    hook = RNGStateHook()
    hook.after_load_checkpoint(_runner(8), old)
    hook.before_train_iter(_runner(8), 0)
    assert torch.equal(torch.rand(5), expected)


# -- two gloo ranks: RNG per rank, the NaN guard, evaluation -----------------


def _metric(classes=3):
    metric = DDBIoUMetric()
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(classes)])
    return metric


def _sample(pred, label):
    return dict(pred_sem_seg=dict(data=torch.tensor([pred])),
                gt_sem_seg=dict(data=torch.tensor([label])),
                img_path=f'{pred}.png')


#: five images of a 3-class set: (prediction, label), 1 x 2 pixels each
IMAGES = [([0, 1], [0, 1]), ([1, 1], [2, 1]), ([2, 0], [2, 0]),
          ([0, 0], [1, 0]), ([2, 2], [2, 1])]


def _two_ranks(rank, init_file, out_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=2)
    results = {}
    try:
        # RNG: rank r seeded r + 10; rank 0 writes both states
        torch.manual_seed(rank + 10)
        hook = RNGStateHook()
        runner = _runner(8)
        hook.before_checkpoint_every_rank(runner)
        checkpoint = dict(meta=dict(iter=8))
        if rank == 0:
            hook.before_save_checkpoint(runner, checkpoint)
        after_save = torch.rand(4)
        box = [checkpoint]
        dist.broadcast_object_list(box, src=0)  # as if read back from disk
        torch.manual_seed(1234)
        hook.after_load_checkpoint(runner, box[0])
        hook.before_train_iter(runner, 0)
        results['rng_world_size'] = box[0]['rng_state']['world_size']
        results['rng_continues'] = torch.equal(torch.rand(4), after_save)
        # evaluation: 5 images, rank 0 gets 3 and rank 1 gets 2
        os.chdir(out_dir)
        metric = _metric()
        metric.process(None, [_sample(*IMAGES[i])
                              for i in range(rank, len(IMAGES), 2)])
        results['metrics'] = metric.evaluate(len(IMAGES))
        results['dist_test_dir'] = os.path.exists('.dist_test')
        # NaN guard: rank 1's loss is NaN at iteration 3; both ranks stop
        guard = NaNGuardHook()
        guard_runner = types.SimpleNamespace(iter=0, max_iters=100, hooks=[],
                                             work_dir=out_dir)
        for it in range(1, 4):
            guard_runner.iter = it - 1
            bad = rank == 1 and it == 3
            guard.after_train_iter(guard_runner, it - 1, outputs=dict(
                loss=torch.tensor(float('nan') if bad else 1.0)))
        try:
            guard.after_train(guard_runner)
            results['nan'] = None
        except NonFiniteLossError as exc:
            results['nan'] = str(exc)
    finally:
        dist.destroy_process_group()
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))


def test_two_ranks_keep_their_streams_evaluate_once_and_stop_together(
        tmp_path):
    # forked, not spawned: the children need no fresh imports (seconds each)
    mp.start_processes(_two_ranks,
                       args=(str(tmp_path / 'init'), str(tmp_path)),
                       nprocs=2, join=True, start_method='fork')
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False)
             for r in range(2)]
    single = _metric()
    single.process(None, [_sample(*image) for image in IMAGES])
    expected = single.evaluate(len(IMAGES))
    for r in ranks:
        assert r['rng_world_size'] == 2
        assert r['rng_continues']  # each rank's own stream, not rank 0's
        assert r['metrics'] == expected
        assert not r['dist_test_dir']
        assert r['nan'] is not None and 'rank 1 at iteration 3' in r['nan']


def test_images_repeated_to_fill_the_ranks_are_refused():
    metric = _metric()
    metric.process(None, [_sample(*image) for image in IMAGES + IMAGES[:1]])
    with pytest.raises(ValueError, match='round_up=False'):
        metric.evaluate(len(IMAGES))


def test_evaluation_samplers_do_not_pad():
    cfg = Config(dict(
        model=dict(type='X'),
        train_dataloader=dict(sampler=dict(type='InfiniteSampler')),
        val_dataloader=dict(sampler=dict(type='DefaultSampler',
                                         shuffle=False)),
        test_dataloader=dict(sampler=dict(type='mmengine.DefaultSampler'))))
    adapt_to_device(cfg, distributed=True)
    assert cfg.val_dataloader.sampler.round_up is False
    assert cfg.test_dataloader.sampler.round_up is False
    assert 'round_up' not in cfg.train_dataloader.sampler


# -- devices -----------------------------------------------------------------


def _fake_gpus(monkeypatch, count, capability=(9, 0)):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'get_device_capability',
                        lambda device=None: capability)
    monkeypatch.setattr(
        torch.cuda, 'is_bf16_supported',
        lambda including_emulation=True: including_emulation or
        capability[0] >= 8)


@pytest.mark.parametrize('capability,native', [((7, 0), False),
                                               ((7, 5), False),
                                               ((8, 0), True), ((9, 0), True)])
def test_only_native_bf16_counts(monkeypatch, capability, native):
    """torch.cuda.is_bf16_supported() counts emulation (V100, T4): those get
    fp16 with a loss scaler instead."""
    _fake_gpus(monkeypatch, 1, capability)
    assert ddb_amp.native_bf16() is native
    assert ddb_amp.amp_dtype('cuda') == (torch.bfloat16 if native
                                         else torch.float16)
    assert ddb_amp.amp_dtype('cpu') == torch.bfloat16


@pytest.mark.parametrize('device,native,wrapper', [
    ('cpu', False, 'BF16OptimWrapper'), ('cuda', True, 'BF16OptimWrapper'),
    ('cuda', False, 'AmpOptimWrapper')])
def test_amp_wrapper_is_chosen_when_the_runner_builds_it(monkeypatch, device,
                                                         native, wrapper):
    built = {}

    class Amp:
        def __init__(self, optimizer, loss_scale, **kwargs):
            built.update(loss_scale=loss_scale, **kwargs)

    monkeypatch.setattr(ddb_optim, 'AmpOptimWrapper', Amp)
    monkeypatch.setattr(ddb_optim, 'get_device', lambda: device)
    monkeypatch.setattr(ddb_optim, 'native_bf16', lambda: native)
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    out = ddb_optim.auto_amp_optim_wrapper(opt, clip_grad=None)
    assert {'BF16OptimWrapper': ddb_optim.BF16OptimWrapper,
            'AmpOptimWrapper': Amp}[wrapper] is type(out)
    if wrapper == 'AmpOptimWrapper':
        assert built == dict(loss_scale='dynamic', clip_grad=None)


def test_amp_config_asks_no_gpu_before_the_ranks_pick_theirs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('a GPU was probed while preparing the config')

    for name in ('is_bf16_supported', 'get_device_capability',
                 'current_device', 'get_device_properties'):
        monkeypatch.setattr(torch.cuda, name, refuse)
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    use_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutoAmpOptimWrapper'
    from mmengine.optim import build_optim_wrapper
    monkeypatch.setattr(ddb_optim, 'get_device', lambda: 'cpu')
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), dict(
        type='AutoAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, ddb_optim.BF16OptimWrapper)


def test_surplus_ranks_share_the_gpus_with_gloo(monkeypatch):
    _fake_gpus(monkeypatch, 1)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert shared_gpus(distributed=True) == 1
    assert shared_gpus(distributed=False) == 0
    cfg = Config(dict(model=dict(type='X', norm_cfg=dict(type='SyncBN')),
                      env_cfg=dict(dist_cfg=dict(backend='nccl')),
                      train_dataloader=dict(batch_size=2)))
    adapt_to_device(cfg, distributed=True)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids == [0]
    assert cfg.model.norm_cfg.type == 'BN'
    assert cfg.train_dataloader.pin_memory is True
    calls = []
    monkeypatch.setattr(compat, '_REAL_SET_DEVICE', calls.append)
    torch.cuda.set_device(1)  # what mmengine's init_dist does on rank 1
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '1')
    torch.cuda.set_device(0)
    assert calls == [0, 0]


def test_one_rank_per_gpu_keeps_nccl_and_pins_memory(monkeypatch):
    _fake_gpus(monkeypatch, 2)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    cfg = Config(dict(model=dict(type='X'),
                      env_cfg=dict(dist_cfg=dict(backend='nccl')),
                      train_dataloader=dict(batch_size=2),
                      val_dataloader=dict(batch_size=1, pin_memory=False)))
    adapt_to_device(cfg, distributed=True)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert cfg.train_dataloader.pin_memory is True
    assert cfg.val_dataloader.pin_memory is False  # the config's own word


def test_no_pinned_memory_without_cuda():
    cfg = Config(dict(model=dict(type='X'),
                      train_dataloader=dict(batch_size=2)))
    adapt_to_device(cfg, distributed=False)
    assert 'pin_memory' not in cfg.train_dataloader


@pytest.fixture
def torch_flags():
    flags = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             tf32_enabled())
    yield
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = \
        flags[2:4]
    set_tf32(flags[4])


def test_deterministic_warns_where_cuda_has_no_deterministic_kernel(
        monkeypatch, torch_flags):
    """Bilinear upsampling backward has no deterministic CUDA kernel: with
    mmengine's plain use_deterministic_algorithms(True) every GPU run with
    --deterministic crashes there; cuBLAS needs its workspace setting."""
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    runner = DDBRunner.__new__(DDBRunner)
    DDBRunner.set_randomness(runner, 0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == CUBLAS_WORKSPACE
    assert runner._seed == 0


def test_tf32_follows_env_cfg(monkeypatch, torch_flags):
    monkeypatch.setattr(Runner, 'setup_env', lambda self, env_cfg: None)
    runner = DDBRunner.__new__(DDBRunner)
    DDBRunner.setup_env(runner, dict(cudnn_benchmark=True))
    assert tf32_enabled()  # default: on, as torch 1.8 had it
    if hasattr(torch.backends.cudnn, 'conv'):  # torch >= 2.9: the new API
        assert torch.backends.cudnn.conv.fp32_precision == 'tf32'
    DDBRunner.setup_env(runner, dict(tf32=False))
    assert not tf32_enabled()
    set_tf32(True)
    assert tf32_enabled()


# -- seeds of the ranks ------------------------------------------------------


def test_every_rank_gets_its_own_seed(monkeypatch):
    """Two ranks draw different numbers (seed + rank) while the samplers keep
    the common seed; one process is seeded exactly as before."""
    from mmseg_ddb.engine import runner as runner_module
    draws = {}
    for rank in (0, 1):
        monkeypatch.setattr(runner_module, 'get_world_size', lambda: 2)
        monkeypatch.setattr(runner_module, 'get_rank', lambda r=rank: r)
        runner = DDBRunner.__new__(DDBRunner)
        DDBRunner.set_randomness(runner, 7)
        assert runner._seed == 7  # the samplers' and workers' base seed
        draws[rank] = torch.rand(3)
    torch.manual_seed(8)
    assert torch.equal(draws[1], torch.rand(3))  # rank 1: seed 7 + 1
    monkeypatch.setattr(runner_module, 'get_world_size', lambda: 1)
    DDBRunner.set_randomness(runner, 7)
    one = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(one, torch.rand(3)) and torch.equal(draws[0], one)
    monkeypatch.setattr(runner_module, 'get_world_size', lambda: 2)
    DDBRunner.set_randomness(runner, 7, seed_per_rank=False)
    assert torch.equal(torch.rand(3), one)  # the switch: same on every rank


# -- teachers under --amp ----------------------------------------------------


def _tiny_segmentor():
    from conftest import REPO
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    model = Config.fromfile(os.path.join(
        REPO, 'configs/_base_/models/deeplabv2red_r18v1c_tiny.py')).model
    model.backbone.update(base_channels=8, stem_channels=8)
    model.decode_head.update(in_channels=64, aspp_channels=8, channels=16)
    model.data_preprocessor.size = (32, 32)
    return model


@pytest.mark.parametrize('precision', ['amp', 'fp32'])
def test_teacher_precision_under_bf16_autocast(precision):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    st = MODELS.build(dict(type='SelfTraining', segmentor=_tiny_segmentor(),
                           teacher_precision=precision))
    st.init_weights()
    st.ema_model.eval()  # no dropout: the two passes differ by precision only
    x = torch.randn(2, 3, 32, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        inside = st.teacher_autocast(x)
        with inside:
            logits = st.ema_model.encode_decode(
                x, [dict(img_shape=(32, 32))] * 2)
    full = st.ema_model.encode_decode(x, [dict(img_shape=(32, 32))] * 2)
    if precision == 'fp32':
        assert logits.dtype == torch.float32 and torch.equal(logits, full)
    else:
        assert logits.dtype == torch.bfloat16
    with pytest.raises(ValueError, match='teacher_precision'):
        MODELS.build(dict(type='SelfTraining', segmentor=_tiny_segmentor(),
                          teacher_precision='fp16'))
