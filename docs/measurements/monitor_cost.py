"""What pseudo-label monitoring costs per training step (README, "Watching a
run"): the ST and CKD training steps of the synthetic demo's network (its
configs, batch 4 of 128x128 crops per domain, AdamW) timed with
``uda.monitor_pseudo_labels`` off and on, side by side.

    python docs/measurements/monitor_cost.py [--steps 40] [--out cost.json]

The two models of a stage have the same weights and get the same batches;
the steps alternate in blocks of 5 (off, on, off, ...) after 3 warm-up steps
each, so both see the same machine load. Random images and labels: the cost
does not depend on what the network has learnt. A record of a measurement,
not a tool.
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
               for _ in range(5)]
    times = {'off': [], 'on': []}
    for (model, wrapper) in pairs:  # warm-up
        for i in range(3):
            model.train_step(batches[i], wrapper)
    for block in range(steps // 5):
        for name, (model, wrapper) in zip(('off', 'on'), pairs):
            for data in batches:
                start = time.perf_counter()
                model.train_step(data, wrapper)
                times[name].append(time.perf_counter() - start)
    off, on = (statistics.median(times[k]) for k in ('off', 'on'))
    return dict(steps=len(times['off']), median_s_off=off, median_s_on=on,
                overhead=on / off - 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=40)
    parser.add_argument('--out')
    args = parser.parse_args()
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
    for stage in ('st', 'ckd'):
        r = results[stage]
        print(f'{stage}: {r["median_s_off"] * 1000:.1f} ms off, '
              f'{r["median_s_on"] * 1000:.1f} ms on, '
              f'{100 * r["overhead"]:+.1f} % ({r["steps"]} steps each)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
