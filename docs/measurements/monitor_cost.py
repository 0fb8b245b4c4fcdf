"""What pseudo-label monitoring costs per training step (README, "Watching a
run"): the ST and CKD training steps of the synthetic demo's network (its
configs, batch 4 of 128x128 crops per domain, AdamW) timed with
``uda.monitor_pseudo_labels`` off and on, side by side.

    python docs/measurements/monitor_cost.py [--steps 30] [--threads 1]
        [--out cost.json]

The two models of a stage have the same weights and get the same batches;
after 3 warm-up steps each, the steps alternate (off, on, off, on, ...) and
the overhead is the median of the paired ratios on/off. Times are the
process's CPU time (``time.process_time``, one torch thread by default),
which other processes on a shared machine disturb far less than the wall
clock. The monitoring code alone (the
confusion matrices; CKD also the teachers' argmax and the plain ensemble) on
the step's tensor shapes is timed too. Random images and labels: the cost
does not depend on what the network has learnt. A record of a measurement, not a tool.
"""
import argparse
import json
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis.train import wrap_uda
from mmseg_ddb.models.uda.monitor import MONITOR_FIELD
from mmseg_ddb.utils import save_prototypes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP, BATCH = 128, 4


def model_of(config: str, **uda):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'synthetic', config))
    init_default_scope('mmseg')
    cfg.model.backbone.init_cfg = None  # random weights: same cost
    cfg.uda.update(uda)
    wrap_uda(cfg)
    return MODELS.build(cfg.model)


def raw_batch(g: torch.Generator) -> dict:
    samples = []
    for _ in range(BATCH):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, CROP, CROP),
                                                    generator=g))
        s.set_field(PixelData(data=torch.randint(0, 19, (1, CROP, CROP),
                                                 generator=g)),
                    MONITOR_FIELD)
        s.set_metainfo(dict(img_shape=(CROP, CROP), ori_shape=(CROP, CROP)))
        samples.append(s)
    return dict(inputs=[torch.randint(0, 256, (3, CROP, CROP),
                                      generator=g, dtype=torch.uint8)
                        for _ in range(BATCH)], data_samples=samples)


def twins(config: str, **uda):
    torch.manual_seed(0)
    off = model_of(config, monitor_pseudo_labels=False, **uda)
    off.init_weights()
    on = model_of(config, monitor_pseudo_labels=True, **uda)
    on.load_state_dict(off.state_dict())
    out = []
    for model in (off, on):
        model.train()
        out.append((model, OptimWrapper(torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4))))
    return out


def time_steps(pairs, steps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    batches = [dict(source=raw_batch(g), target=raw_batch(g))
               for _ in range(4)]
    for (model, wrapper) in pairs:  # warm-up
        for i in range(3):
            model.train_step(batches[i], wrapper)
    times = {'off': [], 'on': []}
    for i in range(steps):
        for name, (model, wrapper) in zip(('off', 'on'), pairs):
            start = time.process_time()
            model.train_step(batches[i % len(batches)], wrapper)
            times[name].append(time.process_time() - start)
    ratios = [b / a for a, b in zip(times['off'], times['on'])]
    return dict(steps=steps, median_s_off=statistics.median(times['off']),
                median_s_on=statistics.median(times['on']),
                overhead=statistics.median(ratios) - 1)


def time_monitor_code(repeats: int = 20) -> dict:
    """The monitoring computations alone, on a step's shapes (ms)."""
    from mmseg_ddb.models.uda.monitor import (
        PseudoLabelMonitor,
        monitor_distillation,
        monitor_self_training,
    )
    from mmseg_ddb.models.uda.teacher import pseudo_label_and_confidence
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(BATCH, 19, CROP, CROP, generator=g)
              for _ in range(2)]
    truth = torch.randint(0, 19, (BATCH, CROP, CROP), generator=g)
    monitor = PseudoLabelMonitor(19)
    softmax = [z.softmax(dim=1) for z in logits]

    labels, confidence = pseudo_label_and_confidence(logits[0])

    def st():  # the pseudo-labels and confidence are the step's own
        monitor_self_training(monitor, confidence, labels, truth, 0.968)

    def ckd():  # the teachers' softmaxes are the step's own (reused)
        monitor_distillation(monitor, ['cu', 'ca'], logits, softmax,
                             labels, truth)
    out = {}
    for name, fn in (('st', st), ('ckd', ckd)):
        fn()
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            fn()
            runs.append(time.process_time() - start)
        out[name] = statistics.median(runs)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = dict(threads=torch.get_num_threads(),
                   st=time_steps(twins('st_cu_synthetic.py'), args.steps))
    with tempfile.TemporaryDirectory() as tmp:
        teachers = []
        for i, name in enumerate(('cu', 'ca')):
            torch.manual_seed(i)
            st = model_of('st_cu_synthetic.py')
            st.init_weights()
            ckpt = osp.join(tmp, f'{name}.pth')
            torch.save(dict(state_dict=st.state_dict()), ckpt)
            protos = osp.join(tmp, f'{name}_protos.pth')
            save_prototypes(protos, torch.randn(19, st.model.feature_dim),
                            dict(name=name))
            teachers.append(dict(name=name, checkpoint=ckpt,
                                 prototypes=protos))
        results['ckd'] = time_steps(twins('ckd_synthetic.py',
                                          teachers=teachers), args.steps)
    results['monitor_code_s'] = time_monitor_code()
    for stage in ('st', 'ckd'):
        r = results[stage]
        code = results['monitor_code_s'][stage]
        print(f'{stage}: {r["median_s_off"] * 1000:.1f} ms off, '
              f'{r["median_s_on"] * 1000:.1f} ms on, paired median '
              f'{100 * r["overhead"]:+.1f} % ({r["steps"]} pairs); the '
              f'monitoring code alone {code * 1000:.1f} ms = '
              f'{100 * code / r["median_s_off"]:.1f} % of a step')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
