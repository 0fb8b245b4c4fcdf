"""Where a training step's time goes on the CPU (README, "Performance").

Profiles the supervised, ST (class path) and CKD steps of a config's network
with ``torch.profiler`` on the benchmark's random batch (the config's batch
size and crop), and sorts the operators' self CPU time into groups:
convolutions (forward and backward), batch norm, element-wise and reductions,
interpolation, losses, the optimizer (AdamW), the EMA update, copies and
allocation, and the rest. It also prints the step's analytic FLOPs and the
achieved GFLOP/s.

    python docs/measurements/profile_steps.py configs/synthetic/st_ca_synthetic.py \
        [--iters 10] [--threads 2] [--channels-last] [--out profile.json]

A record of a measurement, not a tool.
"""
import argparse
import json
import re
from collections import defaultdict

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch.profiler import ProfilerActivity, profile

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis.benchmark import (
    _build,
    benchmark_segmentor_cfg,
    count_flops,
    random_batch,
    train_step,
)

GROUPS = [
    ('convolution', r'conv|mkldnn_convolution|thnn_conv'),
    ('batch norm', r'batch_norm'),
    ('interpolation', r'upsample|interpolate|grid_sampler'),
    ('loss', r'cross_entropy|nll_loss|log_softmax|_softmax'),
    ('optimizer (AdamW)', r'_foreach|adam|addcdiv|lerp'),
    ('matmul', r'mm|matmul|linear|addmm|bmm'),
    ('copy / allocation', r'copy_|to_copy|empty|zeros|ones|clone|contiguous|cat|stack'),
    ('element-wise / reduction', r'add|mul|div|sub|relu|threshold|max|min|sum|mean|where|'
     r'eq|ne|gt|lt|ge|le|pow|sqrt|exp|clamp|sort|unique|argmax|any|all|fill_|index|'
     r'scatter|gather|masked|bernoulli|rand|normal_|uniform_|nonzero|abs|sign'),
]


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    return 'other'


def profile_step(step, iters: int):
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            step()
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    groups = defaultdict(float)
    top = []
    for e in prof.key_averages():
        groups[group_of(e.key)] += e.self_cpu_time_total
        top.append((e.self_cpu_time_total, e.key, e.count))
    top.sort(reverse=True)
    ms = total / 1000 / iters
    return dict(step_ms=ms,
                groups={k: v / total for k, v in sorted(groups.items(), key=lambda x: -x[1])},
                top_ops=[(k, t / 1000 / iters, c // iters) for t, k, c in top[:15]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--out')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    init_default_scope('mmseg')
    seg_cfg = benchmark_segmentor_cfg(cfg, args.channels_last)
    size = seg_cfg.data_preprocessor.get('size', (512, 512))[0]
    bs = cfg.train_dataloader.get('batch_size', 2)
    device = torch.device('cpu')
    batch = random_batch(bs, size, device)
    source, target = batch['source'], batch['target']
    sup = _build(seg_cfg, device)
    fwd = count_flops(lambda: sup.decode_head(sup.extract_feat(source['inputs'])))
    st = _build(dict(type='SelfTraining', segmentor=seg_cfg, mask='class'), device)
    st.local_iter = 1
    ckd = _build(dict(type='CrossPathDistillation', segmentor=seg_cfg,
                      teachers=[dict(name='cu'), dict(name='ca')]), device)
    ckd.prototypes.normal_()
    # forward-equivalents per step: forward + backward (2x) on one batch for the
    # supervised step; ST: source and mixed batch (2 x 3) + teacher forward;
    # CKD: source and target batch (2 x 3) + two teachers' forwards
    steps = dict(
        supervised=(train_step(sup, lambda: sup.loss(source['inputs'],
                                                     source['data_samples']),
                               device, False), 3),
        st=(train_step(st, lambda: st.loss(source, target), device, False), 7),
        ckd=(train_step(ckd, lambda: ckd.loss(source, target), device, False), 8))
    results = dict(config=args.config, threads=torch.get_num_threads(), batch_size=bs,
                   crop=size, channels_last=args.channels_last,
                   forward_gflop=fwd / 1e9 if fwd else None)
    for name, (step, n_fwd) in steps.items():
        r = profile_step(step, args.iters)
        if fwd:
            r['gflop_per_s'] = n_fwd * fwd / 1e9 / (r['step_ms'] / 1000)
        results[name] = r
        print(f'== {name}: {r["step_ms"]:.1f} ms/step (profiled self CPU time)'
              + (f', {r["gflop_per_s"]:.1f} GFLOP/s' if fwd else ''))
        for group, share in r['groups'].items():
            print(f'   {group:28s} {100 * share:5.1f} %')
        for key, ms, count in r['top_ops'][:8]:
            print(f'     {key:40s} {ms:7.2f} ms  x{count}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
