"""How many pseudo-labels change when the teachers run in bf16 instead of fp32.

The measurement behind ``uda.teacher_precision`` (README, "Differences from the
original"): under ``--amp`` the EMA teacher (ST) and the CKD teachers label the
target in the autocast dtype unless ``teacher_precision='fp32'``. This script
takes the trained round-1 stages of a finished synthetic pipeline work dir,
runs their teachers on target training batches (the stage's own loader and
seed) once in fp32 and once under bf16 autocast, and prints the share of
pixels whose label, whose above-threshold status, and (CKD) whose rectified
ensemble label differ, with the quality-weight difference.

    python docs/measurements/teacher_precision.py work_dirs/ddb_synthetic \
        [--batches 50] [--out teacher_precision.json]

A record of a measurement (run on the CPU, whose bf16 autocast rounds like a
GPU's), not a tool: it reads the stage folders the pipeline writes.
"""
import argparse
import glob
import json
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis.train import wrap_uda
from mmseg_ddb.models.uda.prototypes import ensemble_pseudo_label
from mmseg_ddb.models.uda.self_training import set_teacher_mode


def stage_model(stage_dir: str):
    """The UDA model of a stage with its final weights (a CKD stage not yet
    finished: its teachers and prototypes, all that is measured of it), and
    its config (the copy the runner dumped in the stage folder)."""
    config = [p for p in glob.glob(osp.join(stage_dir, '*.py'))][0]
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    wrap_uda(cfg)
    model = MODELS.build(cfg.model)
    marker = osp.join(stage_dir, 'last_checkpoint')
    if osp.isfile(marker):
        last = open(marker).read().strip()
        state = torch.load(last, map_location='cpu', weights_only=True)
        model.load_state_dict(state['state_dict'])
    else:  # a CKD stage still training: its teachers and prototypes
        model.init_weights()
    return model, cfg


def target_batches(model, cfg, batches: int, seed: int = 0):
    loader_cfg = dict(cfg.train_dataloader, num_workers=0,
                      persistent_workers=False)
    torch.manual_seed(seed)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    for i, data in enumerate(loader):
        if i == batches:
            return
        yield model.data_preprocessor(data, training=True)['target']['inputs']


def bf16(fn, *args):
    with torch.autocast('cpu', dtype=torch.bfloat16):
        return fn(*args)


def st_teacher(stage_dir: str, batches: int) -> dict:
    model, cfg = stage_model(stage_dir)
    teacher, threshold = model.ema_model, model.pseudo_threshold
    counts = dict(pixels=0, label=0, confident=0, confident_fp32=0,
                  quality_abs_diff=0.0)
    for inputs in target_batches(model, cfg, batches):
        set_teacher_mode(teacher, model.teacher_bn)
        metas = [dict(img_shape=inputs.shape[2:])] * inputs.shape[0]
        with torch.no_grad():
            probs = [teacher.encode_decode(inputs, metas).float().softmax(1),
                     bf16(teacher.encode_decode, inputs, metas).float()
                     .softmax(1)]
        (conf32, label32), (conf16, label16) = (p.max(dim=1) for p in probs)
        sure32, sure16 = conf32 >= threshold, conf16 >= threshold
        counts['pixels'] += label32.numel()
        counts['label'] += int((label32 != label16).sum())
        counts['confident'] += int((sure32 != sure16).sum())
        counts['confident_fp32'] += int(sure32.sum())
        counts['quality_abs_diff'] += abs(float(sure32.float().mean())
                                          - float(sure16.float().mean()))
    n = counts['pixels']
    return dict(
        stage=osp.basename(stage_dir), batches=batches, pixels=n,
        label_changed=counts['label'] / n,
        threshold_status_changed=counts['confident'] / n,
        share_above_threshold_fp32=counts['confident_fp32'] / n,
        quality_weight_mean_abs_diff=counts['quality_abs_diff'] / batches)


def ckd_teachers(stage_dir: str, batches: int) -> dict:
    model, cfg = stage_model(stage_dir)
    model.eval()
    counts = dict(pixels=0, plain=0, rectified=0, weight_abs_diff=0.0)
    for inputs in target_batches(model, cfg, batches):
        with torch.no_grad():
            fp32 = model.teacher_outputs(inputs)
            low = bf16(model.teacher_outputs, inputs)
        plain = [ensemble_pseudo_label([z.softmax(1) for z in out[0]])[0]
                 for out in (fp32, low)]
        rectified = [ensemble_pseudo_label(out[1])[0] for out in (fp32, low)]
        counts['pixels'] += plain[0].numel()
        counts['plain'] += int((plain[0] != plain[1]).sum())
        counts['rectified'] += int((rectified[0] != rectified[1]).sum())
        for w32, w16 in zip(fp32[2], low[2]):
            chosen = rectified[0][:, None]
            counts['weight_abs_diff'] += float(
                (w32.gather(1, chosen) - w16.float().gather(1, chosen))
                .abs().mean()) / len(fp32[2])
    n = counts['pixels']
    return dict(stage=osp.basename(stage_dir), batches=batches, pixels=n,
                plain_ensemble_label_changed=counts['plain'] / n,
                rectified_label_changed=counts['rectified'] / n,
                rectification_weight_mean_abs_diff=(
                    counts['weight_abs_diff'] / batches))


def stage_args(description: str):
    """The command line of a measurement over a work dir's stages: work_dir,
    --batches, --stages, --out (gradients off)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('work_dir')
    parser.add_argument('--batches', type=int, default=50)
    parser.add_argument('--stages', nargs='+',
                        default=['r1_st_cu', 'r1_st_ca', 'r1_ckd'])
    parser.add_argument('--out')
    torch.set_grad_enabled(False)
    return parser.parse_args()


def main():
    args = stage_args(__doc__.split('\n')[0])
    rows = []
    for stage in args.stages:
        folder = osp.join(args.work_dir, stage)
        measure = ckd_teachers if 'ckd' in stage else st_teacher
        rows.append(measure(folder, args.batches))
        print(json.dumps(rows[-1]))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
