"""Side-by-side timing of the DDB training steps and inference (issue 7).

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
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from ..errors import ConfigError
from ..utils import iter_dicts, use_channels_last
from ..utils.amp import amp_dtype
from ..utils.amp import autocast as amp_autocast
from ..models.uda.bridging import make_mask, mix, photometric_augment
from ..models.uda.teacher import ema_alpha, ema_update_


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


def count_flops(fn: Callable[[], None]) -> Optional[int]:
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def run_benchmark(cfg: Config, device: str = 'cpu', iters: int = 10,
                  warmup: int = 3, amp: bool = False,
                  batch_size: Optional[int] = None,
                  crop: Optional[int] = None, loader_batches: int = 20,
                  flops: bool = True, channels_last: bool = False,
                  infer_shape: Optional[Sequence[int]] = None,
                  infer_label_shape: Optional[Sequence[int]] = None,
                  loader_data: str = 'config',
                  loader_workers: Optional[int] = None) -> Dict:
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if loader_data not in ('config', 'synthetic'):
        raise ConfigError(f'loader_data={loader_data!r}: use config or '
                          'synthetic')
    if loader_data == 'synthetic' and loader_batches > 0 and \
            cfg.train_dataloader.dataset.get('type') == 'UDADataset':
        on_synthetic_data(cfg.train_dataloader, '')  # refuse before timing
    dev = torch.device(device)
    seg_cfg = copy.deepcopy(cfg.model)
    for node in iter_dicts(seg_cfg):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
    seg_cfg.pretrained = None  # timing needs no init weights
    seg_cfg.init_cfg = None
    seg_cfg.backbone.init_cfg = None
    if channels_last:  # as train.py --channels-last builds it
        use_channels_last(seg_cfg)
    bs = batch_size or cfg.train_dataloader.get('batch_size', 2)
    size = crop or seg_cfg.data_preprocessor.get('size', (512, 512))[0]
    torch.manual_seed(0)
    x_s = torch.randn(bs, 3, size, size, device=dev)
    x_t = torch.randn(bs, 3, size, size, device=dev)
    labels = torch.randint(0, 19, (bs, size, size), device=dev)
    source = dict(inputs=x_s, data_samples=_samples(labels))
    target = dict(inputs=x_t, data_samples=_samples(labels))
    def autocast():
        return amp_autocast(dev.type, amp)

    def build(model_cfg):
        return MODELS.build(model_cfg).to(dev).train()

    def optimizer_for(model):
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=1e-6)

    def step_fn(model, loss_fn):
        opt = optimizer_for(model)

        def step():
            with autocast():
                losses = loss_fn()
            total = sum(v for k, v in losses.items() if 'loss' in k)
            total.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    results = dict(device=str(dev), amp=amp,
                   amp_dtype=str(amp_dtype(dev.type)) if amp else None,
                   channels_last=channels_last, batch_size=bs, crop=size,
                   iters=iters, warmup=warmup)

    # supervised
    sup = build(copy.deepcopy(seg_cfg))
    sup_step = step_fn(sup, lambda: sup.loss(x_s, source['data_samples']))
    _reset_peak(dev)
    results['supervised_ms'] = time_fn(sup_step, dev, iters, warmup)
    results['supervised_peak_mb'] = peak_memory_mb(dev)

    # Stage 1: self-training (class path: the heavier mask)
    st = build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'))
    st.local_iter = 1
    st_step = step_fn(st, lambda: st.loss(source, target))
    _reset_peak(dev)
    results['st_ms'] = time_fn(st_step, dev, iters, warmup)
    results['st_peak_mb'] = peak_memory_mb(dev)

    mean, std = st.norm_mean_std
    ema, src = st._ema_tensors()

    def bridging():
        ema_update_(ema, src, ema_alpha(10, st.alpha))
        mask = make_mask('class', labels)
        mixed = mix(mask, x_s, x_t)
        photometric_augment(mixed, mean, std, **st.aug)
    results['bridging_ms'] = time_fn(bridging, dev, iters, warmup)
    results['bridging_share_of_st'] = results['bridging_ms'] / \
        results['st_ms']
    del st

    # Stage 2: distillation with two teachers and prototypes
    ckd = build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                     teachers=[dict(name='cu'), dict(name='ca')]))
    ckd.prototypes.normal_()
    ckd_step = step_fn(ckd, lambda: ckd.loss(source, target))
    _reset_peak(dev)
    results['ckd_ms'] = time_fn(ckd_step, dev, iters, warmup)
    results['ckd_peak_mb'] = peak_memory_mb(dev)
    del ckd

    # inference: the test protocol (whole image, softmax resized to the
    # label size, argmax), e.g. Cityscapes: 1024x512 in, 2048x1024 labels
    sup.eval()
    in_shape = tuple(infer_shape or (size, size))
    out_shape = tuple(infer_label_shape or in_shape)
    x_i = torch.randn(bs, 3, *in_shape, device=dev)
    metas = [SegDataSample(metainfo=dict(
        img_shape=in_shape, ori_shape=out_shape, pad_shape=in_shape,
        padding_size=[0, 0, 0, 0])) for _ in range(bs)]

    @torch.no_grad()
    def infer():
        with autocast():
            sup.predict(x_i, metas)
    results['inference_shape'] = list(in_shape)
    results['inference_label_shape'] = list(out_shape)
    results['inference_ms'] = time_fn(infer, dev, iters, warmup)
    results['inference_images_per_s'] = bs * 1000 / results['inference_ms']

    results['st_over_supervised'] = results['st_ms'] / results['supervised_ms']
    results['ckd_over_supervised'] = results['ckd_ms'] / \
        results['supervised_ms']

    if flops:
        sup.train()
        fwd = count_flops(lambda: sup.decode_head(sup.extract_feat(x_s)))
        results['forward_gflop'] = None if fwd is None else fwd / 1e9
        if fwd and dev.type == 'cuda':
            # analytic cost model of the issue: 3 / 7 / 8 forwards
            for key, n in (('supervised', 3), ('st', 7), ('ckd', 8)):
                results[f'{key}_tflops'] = n * fwd / (
                    results[f'{key}_ms'] / 1000) / 1e12
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
        if kind != 'GTADataset':
            node['data_prefix'] = dict(img_path='leftImg8bit/train')
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
