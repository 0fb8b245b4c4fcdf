"""Side-by-side timing of the DDB training steps and inference.

Every number comes from one process, the same model and the same batch, so
the ratios (ST / supervised, CKD / supervised) compare like with like.
"""
import copy
import os.path as osp
import resource
import statistics
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..engine.runner import set_tf32, tf32_enabled
from ..errors import ConfigError
from ..models.uda.bridging import make_mask, mix, photometric_augment
from ..utils import iter_dicts, sync_bn_to_bn, use_channels_last
from ..utils.amp import amp_dtype
from ..utils.amp import autocast as amp_autocast


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], None], device: torch.device, iters: int,
            warmup: int) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def _samples(labels: torch.Tensor):
    out = []
    for label in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label[None])
        h, w = label.shape
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
        out.append(s)
    return out


def _attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of ``softmax(q k^T) v`` for q [B, H, L, E], k [B, H, S, E],
    v [B, H, S, Ev]: two matrix products, 2 FLOPs per multiply-add."""
    b, h, length, e = query_shape
    source, ev = key_shape[-2], value_shape[-1]
    return 2 * b * h * length * source * (e + ev)


def count_flops(fn: Callable[[], None]) -> Optional[int]:
    """Analytic FLOPs of ``fn()`` by torch's counter (convolutions and
    matrix products from their shapes), with the fused CPU attention kernel
    counted too (torch's counter knows only the GPU ones)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    custom = {}
    cpu_attention = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu',
                            None)
    if cpu_attention is not None:
        custom[cpu_attention] = _attention_flops
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with counter:
        fn()
    return int(counter.get_total_flops())


def benchmark_segmentor_cfg(cfg: Config, channels_last: bool = False) -> dict:
    """The config's segmentor as the benchmark builds it: SyncBN as BN (one
    process), no init weights (timing needs none), channels_last if asked
    (as train.py ``--channels-last`` builds it)."""
    seg_cfg = copy.deepcopy(cfg.model)
    sync_bn_to_bn(seg_cfg)
    seg_cfg.pretrained = None
    seg_cfg.init_cfg = None
    seg_cfg.backbone.init_cfg = None
    if channels_last:
        use_channels_last(seg_cfg)
    return seg_cfg


def random_batch(batch_size: int, size: int, device: torch.device,
                 num_classes: int = 19) -> Dict:
    """Normalised source and target images [B, 3, size, size] and random
    source labels, as the UDA models' ``loss(source, target)`` takes them."""
    torch.manual_seed(0)
    x_s = torch.randn(batch_size, 3, size, size, device=device)
    x_t = torch.randn(batch_size, 3, size, size, device=device)
    labels = torch.randint(0, num_classes, (batch_size, size, size), device=device)
    return dict(labels=labels,
                source=dict(inputs=x_s, data_samples=_samples(labels)),
                target=dict(inputs=x_t, data_samples=_samples(labels)))


def train_step(model: torch.nn.Module, loss_fn: Callable[[], Dict],
               device: torch.device, amp: bool) -> Callable[[], None]:
    """One optimisation step of ``model`` (AdamW) on ``loss_fn()``'s losses
    under the benchmark's autocast, as a callable for :func:`time_fn`."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)

    def step():
        with amp_autocast(device.type, amp):
            losses = loss_fn()
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def _time_step(results: Dict, key: str, step: Callable[[], None],
               device: torch.device, iters: int, warmup: int) -> None:
    _reset_peak(device)
    results[f'{key}_ms'] = time_fn(step, device, iters, warmup)
    results[f'{key}_peak_mb'] = peak_memory_mb(device)


def time_training_steps(seg_cfg: dict, batch: Dict, device: torch.device,
                        iters: int, warmup: int, amp: bool,
                        results: Dict) -> torch.nn.Module:
    """Times a supervised step, a Stage-1 ST step (class path, the heavier
    mask) with its bridging + augmentation + EMA share, and a Stage-2 CKD
    step (two teachers, prototypes) into ``results`` (``*_ms``,
    ``*_peak_mb``, ``bridging_ms``, ``bridging_share_of_st``, the ratios).
    Returns the supervised model, for inference and FLOPs; the UDA models
    are freed after their timing."""
    source = batch['source']
    sup = _build(seg_cfg, device)
    _time_step(results, 'supervised', train_step(
        sup, lambda: sup.loss(source['inputs'], source['data_samples']), device, amp),
        device, iters, warmup)
    _time_self_training(seg_cfg, batch, device, iters, warmup, amp, results)
    _time_distillation(seg_cfg, batch, device, iters, warmup, amp, results)
    results['st_over_supervised'] = results['st_ms'] / results['supervised_ms']
    results['ckd_over_supervised'] = results['ckd_ms'] / results['supervised_ms']
    return sup


def _build(model_cfg: dict, device: torch.device) -> torch.nn.Module:
    return MODELS.build(copy.deepcopy(model_cfg)).to(device).train()


def _time_self_training(seg_cfg: dict, batch: Dict, device: torch.device, iters: int,
                        warmup: int, amp: bool, results: Dict) -> None:
    source, target = batch['source'], batch['target']
    st = _build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'), device)
    st.local_iter = 1
    _time_step(results, 'st', train_step(st, lambda: st.loss(source, target), device, amp),
               device, iters, warmup)
    mean, std = st.norm_mean_std

    def bridging():
        st.update_ema(10)
        mask = make_mask('class', batch['labels'])
        mixed = mix(mask, source['inputs'], target['inputs'])
        photometric_augment(mixed, mean, std, **st.aug)
    results['bridging_ms'] = time_fn(bridging, device, iters, warmup)
    results['bridging_share_of_st'] = results['bridging_ms'] / results['st_ms']


def _time_distillation(seg_cfg: dict, batch: Dict, device: torch.device, iters: int,
                       warmup: int, amp: bool, results: Dict) -> None:
    source, target = batch['source'], batch['target']
    ckd = _build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                      teachers=[dict(name='cu'), dict(name='ca')]), device)
    ckd.prototypes.normal_()
    _time_step(results, 'ckd', train_step(ckd, lambda: ckd.loss(source, target), device, amp),
               device, iters, warmup)


def time_inference(model: torch.nn.Module, batch_size: int, in_shape: Sequence[int],
                   out_shape: Sequence[int], device: torch.device, iters: int,
                   warmup: int, amp: bool, results: Dict) -> None:
    """The test protocol (whole image, softmax resized to the label size,
    argmax), e.g. Cityscapes: 1024x512 in, 2048x1024 labels."""
    model.eval()
    x = torch.randn(batch_size, 3, *in_shape, device=device)
    metas = [SegDataSample(metainfo=dict(
        img_shape=tuple(in_shape), ori_shape=tuple(out_shape),
        pad_shape=tuple(in_shape), padding_size=[0, 0, 0, 0]))
        for _ in range(batch_size)]

    @torch.no_grad()
    def infer():
        with amp_autocast(device.type, amp):
            model.predict(x, metas)
    results['inference_shape'] = list(in_shape)
    results['inference_label_shape'] = list(out_shape)
    results['inference_ms'] = time_fn(infer, device, iters, warmup)
    results['inference_images_per_s'] = batch_size * 1000 / results['inference_ms']


def add_flops(model: torch.nn.Module, inputs: Tensor, device: torch.device,
              results: Dict) -> None:
    """Analytic forward FLOPs of the segmentor (torch's counter: matmuls and
    convolutions from their shapes): ``forward_gflop`` for the batch and
    ``forward_gflop_per_image``; on CUDA the achieved TFLOP/s of each step
    by the issue's cost model (3 / 7 / 8 forward-equivalents)."""
    model.train()
    fwd = count_flops(lambda: model.decode_head(model.extract_feat(inputs)))
    results['forward_gflop'] = None if fwd is None else fwd / 1e9
    results['forward_gflop_per_image'] = None if fwd is None else \
        fwd / inputs.shape[0] / 1e9
    if fwd and device.type == 'cuda':
        for key, n in (('supervised', 3), ('st', 7), ('ckd', 8)):
            results[f'{key}_tflops'] = n * fwd / (results[f'{key}_ms'] / 1000) / 1e12


def run_benchmark(cfg: Config, device: str = 'cpu', iters: int = 10,
                  warmup: int = 3, amp: bool = False,
                  batch_size: Optional[int] = None,
                  crop: Optional[int] = None, loader_batches: int = 20,
                  flops: bool = True, channels_last: bool = False,
                  infer_shape: Optional[Sequence[int]] = None,
                  infer_label_shape: Optional[Sequence[int]] = None,
                  loader_data: str = 'config',
                  loader_workers: Optional[int] = None) -> Dict:
    """Time the supervised, ST and CKD steps, inference and the data loader
    of a config's network, on random tensors of the config's crop.

    Args:
        cfg (Config): A DDB config (its ``model`` and ``train_dataloader``).
        device (str): 'cpu' or 'cuda'.
        iters, warmup (int): Timed and untimed repetitions (median reported).
        amp (bool): bf16 autocast (fp16 on GPUs without bf16).
        batch_size, crop (int, optional): Default: the config's.
        loader_batches (int): Batches for the loader throughput (0: skip).
        flops (bool): Count the analytic forward FLOPs.
        channels_last (bool): channels_last weights and inputs.
        infer_shape, infer_label_shape: Inference input / label size.
        loader_data (str): 'config' or 'synthetic' (see
            :func:`on_synthetic_data`).
        loader_workers (int, optional): Loader processes (default: config).

    Returns:
        dict: ``supervised_ms``, ``st_ms``, ``ckd_ms`` (median ms per step),
        their ``*_peak_mb`` (CUDA max allocated, or the process's max RSS on
        the CPU, which only grows), ``st_over_supervised``,
        ``ckd_over_supervised``, ``bridging_ms`` / ``bridging_share_of_st``,
        ``inference_ms`` / ``inference_images_per_s``, ``forward_gflop``
        (per batch) / ``forward_gflop_per_image``, ``*_tflops`` (CUDA),
        ``loader_pairs_per_s``, and the settings.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if loader_data not in ('config', 'synthetic'):
        raise ConfigError(f'loader_data={loader_data!r}: use config or '
                          'synthetic')
    if loader_data == 'synthetic' and loader_batches > 0 and \
            cfg.train_dataloader.dataset.get('type') == 'UDADataset':
        on_synthetic_data(cfg.train_dataloader, '')  # refuse before timing
    dev = torch.device(device)
    # the kernels training picks: cuDNN autotuning and TF32 as env_cfg says
    env_cfg = cfg.get('env_cfg') or {}
    torch.backends.cudnn.benchmark = bool(env_cfg.get('cudnn_benchmark'))
    set_tf32(env_cfg.get('tf32', True))
    seg_cfg = benchmark_segmentor_cfg(cfg, channels_last)
    bs = batch_size or cfg.train_dataloader.get('batch_size', 2)
    size = crop or seg_cfg.data_preprocessor.get('size', (512, 512))[0]
    batch = random_batch(bs, size, dev)
    results = dict(device=str(dev), amp=amp,
                   amp_dtype=str(amp_dtype(dev.type)) if amp else None,
                   channels_last=channels_last, batch_size=bs, crop=size,
                   iters=iters, warmup=warmup,
                   cudnn_benchmark=torch.backends.cudnn.benchmark,
                   tf32=tf32_enabled())
    sup = time_training_steps(seg_cfg, batch, dev, iters, warmup, amp, results)
    in_shape = tuple(infer_shape or (size, size))
    time_inference(sup, bs, in_shape, tuple(infer_label_shape or in_shape), dev,
                   iters, warmup, amp, results)
    if flops:
        add_flops(sup, batch['source']['inputs'], dev, results)
    results['loader_pairs_per_s'] = loader_throughput(
        cfg, loader_batches, loader_data, loader_workers)
    results['loader_data'] = loader_data
    results['loader_workers'] = (cfg.train_dataloader.get('num_workers')
                                 if loader_workers is None
                                 else loader_workers)
    return results


#: the on-disk layouts the synthetic generator writes, by dataset type
SYNTHETIC_LAYOUTS = {'GTADataset': 'gta', 'DDBCityscapesDataset': 'cityscapes',
                     'CityscapesDataset': 'cityscapes'}


def on_synthetic_data(dl_cfg: dict, root: str, height: int = 1024,
                      width: int = 2048, num: int = 16) -> dict:
    """``dl_cfg`` with every dataset pointed at synthetic scenes of
    ``height`` x ``width`` (real-image size) written into ``root`` in its
    on-disk layout (GTA5 converted, Cityscapes), keeping its pipeline: the
    loader's cost (PNG decoding, resize, crop, flip, collation) as on the
    real data, where there is none."""
    dl_cfg = copy.deepcopy(dl_cfg)
    generator = dict(root=root, seed=0, height=height, width=width,
                     num_source=num, num_target_train=num, num_target_val=0,
                     num_source_val=0)
    for node in iter_dicts(dl_cfg.get('dataset')):
        if 'pipeline' not in node:
            continue  # a wrapper (UDADataset, ConcatDataset) or a transform
        kind = node.get('type')
        if kind not in SYNTHETIC_LAYOUTS:
            raise ConfigError(
                f'--loader-data synthetic: the train dataloader has a '
                f'{kind}, which has no synthetic layout (there are '
                f'{", ".join(sorted(SYNTHETIC_LAYOUTS))}); measure it on '
                'its real data with --loader-data config')
        node['data_root'] = osp.join(root, SYNTHETIC_LAYOUTS[kind])
        node['synthetic'] = dict(generator)
        if kind != 'GTADataset':  # with its labels (pseudo-label monitoring)
            node['data_prefix'] = dict(img_path='leftImg8bit/train',
                                       seg_map_path='gtFine/train')
    return dl_cfg


def loader_throughput(cfg: Config, batches: int, data: str = 'config',
                      workers: Optional[int] = None) -> Optional[float]:
    """UDA pairs per second from the config's train dataloader (its
    pipeline, batch size and worker count, or ``workers``), on the config's
    data or (``data='synthetic'``) on synthetic images of the real size in
    the same layout; None if it is not a UDA config or ``batches`` is 0."""
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    if dl_cfg.dataset.get('type') != 'UDADataset' or batches <= 0:
        return None
    if workers is not None:
        dl_cfg.num_workers = workers
        dl_cfg.persistent_workers = workers > 0
    from mmengine.runner import Runner
    with tempfile.TemporaryDirectory(prefix='ddb-loader-') as tmp:
        if data == 'synthetic':
            dl_cfg = on_synthetic_data(dl_cfg, osp.join(tmp, 'synthetic'))
        loader = Runner.build_dataloader(dl_cfg, seed=0)
        it = iter(loader)
        next(it)  # start the workers
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        elapsed = time.perf_counter() - start
        del it, loader  # stop the workers before the files go
    return batches * dl_cfg.batch_size / elapsed
