"""Where the small classes go: what the trained teachers of a finished
synthetic pipeline label the target pixels of each class as, on the target
training crops they train on (the stage's own loader and seed), scored with
the target labels (which the demo has; monitoring only).

For each class: its share of the labelled pixels, the teacher's recall
(pixels of the class labelled as the class), the two classes most of its
pixels are labelled as instead, the share of pixels the teacher labels as the
class, how many of those are above the confidence threshold (ST), and the
highest confidence (ST) or rectified score (CKD) the teacher gives the class.
ST stages: the EMA teacher in its training BN mode (as it labels during
training); CKD stages: the prototype-rectified ensemble the student trains
on.

    python docs/measurements/small_classes.py work_dirs/ddb_synthetic/seed0 \
        [--stages r1_st_cu r1_st_ca r1_ckd] [--batches 50] [--out f.json]
"""
import json
import os.path as osp

import torch
from mmengine.runner import Runner
from teacher_precision import stage_args, stage_model

from mmseg_ddb.datasets.base import CITYSCAPES_METAINFO
from mmseg_ddb.models.uda.monitor import monitor_labels
from mmseg_ddb.models.uda.prototypes import ensemble_pseudo_label
from mmseg_ddb.models.uda.self_training import set_teacher_mode

CLASSES = CITYSCAPES_METAINFO['classes']
SMALL = ('pole', 'traffic light', 'traffic sign', 'person', 'rider', 'bus',
         'train', 'motorcycle', 'bicycle')


def labelled_batches(model, cfg, batches):
    """(target inputs, target labels [B, H, W]) of the stage's loader."""
    loader_cfg = dict(cfg.train_dataloader, num_workers=0,
                      persistent_workers=False)
    torch.manual_seed(0)
    for i, data in enumerate(Runner.build_dataloader(loader_cfg, seed=0)):
        if i == batches:
            return
        target = model.data_preprocessor(data, training=True)['target']
        yield target['inputs'], monitor_labels(
            target['data_samples'], tuple(target['inputs'].shape[2:]), 255)


def teacher_labels(model, inputs):
    """(labels, confidence) the stage trains its student on."""
    if hasattr(model, 'ema_model'):
        set_teacher_mode(model.ema_model, model.teacher_bn)
        metas = [dict(img_shape=inputs.shape[2:])] * inputs.shape[0]
        probs = model.ema_model.encode_decode(inputs, metas).softmax(1)
        conf, label = probs.max(dim=1)
        return label, conf
    model.eval()
    label, probs = ensemble_pseudo_label(model.teacher_outputs(inputs)[1])
    return label, probs.max(dim=1).values


def measure(stage_dir, batches):
    model, cfg = stage_model(stage_dir)
    # ST only: CKD's rectified ensemble is not a probability (unnormalised)
    # and no threshold applies to it by default
    threshold = getattr(model, 'pseudo_threshold', None) \
        if hasattr(model, 'ema_model') else None
    k = len(CLASSES)
    conf_matrix = torch.zeros(k, k, dtype=torch.long)
    confident = torch.zeros(k, dtype=torch.long)
    top = torch.zeros(k)
    for inputs, gt in labelled_batches(model, cfg, batches):
        label, conf = teacher_labels(model, inputs)
        keep = gt != 255
        conf_matrix += torch.bincount(gt[keep] * k + label[keep],
                                      minlength=k * k).view(k, k)
        if threshold is not None:
            confident += torch.bincount(label[conf >= threshold],
                                        minlength=k)
        for c in range(k):
            sel = conf[label == c]
            if sel.numel():
                top[c] = max(top[c], float(sel.max()))
    total = int(conf_matrix.sum())
    rows = {}
    for c, name in enumerate(CLASSES):
        gt_n, pred_n = int(conf_matrix[c].sum()), int(conf_matrix[:, c].sum())
        others = [(int(conf_matrix[c, j]), CLASSES[j]) for j in range(k)
                  if j != c]
        others.sort(reverse=True)
        rows[name] = dict(
            gt_share=gt_n / total * 100,
            recall=conf_matrix[c, c].item() / gt_n * 100 if gt_n else None,
            labelled_as=[(n, round(v / gt_n * 100, 1)) for v, n in others[:2]
                         ] if gt_n else [],
            pred_share=pred_n / total * 100,
            pred_confident_share=(int(confident[c]) / pred_n * 100
                                  if pred_n and threshold else None),
            max_confidence=float(top[c]))
    return dict(stage=osp.basename(stage_dir), batches=batches,
                threshold=threshold, classes=rows)


def main():
    args = stage_args(__doc__.split('\n')[0])
    out = []
    for stage in args.stages:
        out.append(measure(osp.join(args.work_dir, stage), args.batches))
        print(f'== {stage}: class, share of target pixels %, recall %, '
              'labelled instead as, share labelled as it %, of those above '
              'threshold %, max confidence')
        for name in SMALL + ('car', 'truck', 'road'):
            r = out[-1]['classes'][name]
            rec = 'n/a' if r['recall'] is None else f'{r["recall"]:.1f}'
            sure = 'n/a' if r['pred_confident_share'] is None else \
                f'{r["pred_confident_share"]:.1f}'
            print(f'  {name:<13} {r["gt_share"]:5.2f} {rec:>5} '
                  f'{r["labelled_as"]} {r["pred_share"]:5.2f} {sure:>5} '
                  f'{r["max_confidence"]:.3f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
