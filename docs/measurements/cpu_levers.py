"""The main job's CPU levers, each compared side by side in one process
(README, "Performance": "The main job's time, lever by lever").

    python docs/measurements/cpu_levers.py estimator   # prototype estimator, before/after
    python docs/measurements/cpu_levers.py compile     # torch.compile on the supervised step
    python docs/measurements/cpu_levers.py loader [nice|idle]   # loader workers' priority

* ``estimator``: one prototype-pass batch (the demo's logits and 64-channel
  features upsampled to the 128x128 crop, labels, class means, running mean)
  with the formulas before (``argmax(dim=1)``, pixel-major ``index_add_`` of a
  transposed copy) and after (:func:`hard_label`, sums along the features' own
  pixel axis); checks the prototypes are equal to the bit, then times both in
  10 interleaved rounds.
* ``compile``: the demo network's supervised step eager and with the backbone
  and head under ``torch.compile`` (the first two compiled steps include the
  compilation), 3 x 10 steps each.
* ``loader``: the ST step alone, fed by the config's 2-worker loader, and fed
  by a second such loader whose workers run at ``nice 19`` or ``SCHED_IDLE``;
  6 interleaved rounds of 8 steps.

The data generation's lever needs no script: time
``python -m mmseg_ddb.datasets.synthetic ROOT --workers 1`` against
``--workers 2`` (and ``diff -r`` the two roots). A record of a measurement,
not a tool; timings on a shared machine are noisy, so only the interleaved,
same-process comparisons are meaningful.
"""
import copy
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis.benchmark import (
    _build,
    benchmark_segmentor_cfg,
    random_batch,
    time_fn,
    train_step,
)
from mmseg_ddb.models.uda import prototype_estimation as pe
from mmseg_ddb.utils import load_config

CONFIG = 'configs/synthetic/st_cu_synthetic.py'


def _means_before(features, labels, num_classes, min_pixels=10):
    """``image_class_means`` as it was: pixel-major ``index_add_`` of the
    gathered (transposed) pixels."""
    batch, dim = features.shape[:2]
    counts = pe.class_pixel_counts(labels, num_classes)
    flat = labels.reshape(batch, -1).long()
    keep = (flat >= 0) & (flat < num_classes)
    index = (flat + torch.arange(batch).unsqueeze(1) * num_classes)[keep]
    pixels = features.float().flatten(2).transpose(1, 2)[keep]
    sums = features.new_zeros(batch * num_classes, dim).index_add_(0, index, pixels)
    means = sums.view(batch, num_classes, dim) / counts.clamp(min=1).unsqueeze(-1)
    return means, counts >= min_pixels


def estimator() -> None:
    torch.manual_seed(0)
    batches = [(torch.randn(4, 19, 16, 16) * 3, torch.relu(torch.randn(4, 64, 16, 16)))
               for _ in range(8)]

    def run(before: bool):
        est = pe.PrototypeEstimator(19, 64)
        for logits, feats in batches:
            logits, feats = (F.interpolate(t, size=(128, 128), mode='bilinear',
                                           align_corners=False) for t in (logits, feats))
            if before:
                means, valid = _means_before(feats, logits.argmax(dim=1), 19)
            else:
                means, valid = pe.image_class_means(feats, pe.hard_label(logits), 19)
            pe.update_prototypes_(est.prototypes, est.counts, means, valid)
        return est.prototypes

    assert torch.equal(run(True), run(False)), 'the prototypes differ'
    times = {True: [], False: []}
    for _ in range(10):
        for before in (True, False):
            start = time.perf_counter()
            run(before)
            times[before].append((time.perf_counter() - start) / len(batches) * 1e3)
    print('prototypes equal to the bit; ms per batch (median of 10 rounds): '
          f'before {statistics.median(times[True]):.1f}, '
          f'after {statistics.median(times[False]):.1f}')


def _segmentor_cfg():
    cfg = load_config(CONFIG)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg, benchmark_segmentor_cfg(cfg)


def compile_step() -> None:
    _, seg_cfg = _segmentor_cfg()
    dev = torch.device('cpu')
    source = random_batch(4, 128, dev)['source']
    for mode in ('eager', 'compiled'):
        torch.manual_seed(0)
        model = _build(seg_cfg, dev)
        if mode == 'compiled':
            model.backbone = torch.compile(model.backbone)
            model.decode_head = torch.compile(model.decode_head)
        step = train_step(model, lambda: model.loss(source['inputs'],
                                                    source['data_samples']), dev, False)
        start = time.perf_counter()
        step()
        step()
        first = time.perf_counter() - start
        runs = [time_fn(step, dev, 10, 2) for _ in range(3)]
        print(f'{mode}: first two steps {first:.1f} s, then ms per step '
              f'{", ".join(f"{t:.1f}" for t in runs)}')


def loader(policy: str) -> None:
    from mmengine.runner import Runner
    cfg, seg_cfg = _segmentor_cfg()
    dev = torch.device('cpu')
    batch = random_batch(4, 128, dev)
    model = _build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'), dev)
    model.local_iter = 1
    step = train_step(model, lambda: model.loss(batch['source'], batch['target']), dev, False)
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    normal = iter(Runner.build_dataloader(copy.deepcopy(dl_cfg), seed=0))
    low = iter(Runner.build_dataloader(copy.deepcopy(dl_cfg), seed=0))
    next(normal)
    next(low)
    for worker in low._workers:
        if policy == 'nice':
            os.setpriority(os.PRIO_PROCESS, worker.pid, 19)
        else:
            os.sched_setscheduler(worker.pid, os.SCHED_IDLE, os.sched_param(0))
    for _ in range(3):
        step()
    feeds = {'alone': None, 'loader': normal, f'loader ({policy})': low}
    times = {name: [] for name in feeds}
    for _ in range(6):
        for name, feed in feeds.items():
            start = time.perf_counter()
            for _ in range(8):
                if feed is not None:
                    next(feed)
                step()
            times[name].append((time.perf_counter() - start) / 8 * 1e3)
    print('ST step, ms (median of 6 interleaved rounds): ' + ', '.join(
        f'{name} {statistics.median(t):.0f}' for name, t in times.items()))


if __name__ == '__main__':
    torch.set_num_threads(2)
    what = sys.argv[1] if len(sys.argv) > 1 else 'estimator'
    if what == 'estimator':
        estimator()
    elif what == 'compile':
        compile_step()
    elif what == 'loader':
        loader(sys.argv[2] if len(sys.argv) > 2 else 'nice')
    else:
        sys.exit(f'unknown lever {what!r}: estimator, compile or loader')
