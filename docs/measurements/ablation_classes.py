"""Per-class IoU of an ablation run beside the default run, mean over seeds.

    python docs/measurements/ablation_classes.py WORK_DIR [--classes pole person ...]

WORK_DIR is the main job's work dir of ``--seeds ... --ablate``: the default
run in WORK_DIR/seed<S>/, each ablation in WORK_DIR/ablations/<name>/seed<S>/
(the names and seeds are read from WORK_DIR/ablations/summary.json). Prints,
per ablation and rerun stage, the target IoU of each chosen class (default
-> ablated) and the mean over them, from each stage's metrics.json.
"""
import argparse
import json
import os.path as osp

SMALL = ('pole', 'traffic light', 'traffic sign', 'person', 'rider')


def per_class(work_dir: str, stage: str) -> dict:
    with open(osp.join(work_dir, stage, 'metrics.json')) as f:
        return json.load(f)['per_class']


def folder(name: str) -> str:
    from mmseg_ddb.pipeline.ablate import folder_name
    return folder_name(name)


def mean(values):
    return sum(values) / len(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('--classes', nargs='+', default=list(SMALL))
    args = parser.parse_args()
    with open(osp.join(args.work_dir, 'ablations', 'summary.json')) as f:
        summary = json.load(f)
    seeds = summary['seeds']
    print('| ablation | stage | ' + ' | '.join(args.classes) +
          ' | mean of these |')
    print('|---|---|' + '---|' * (len(args.classes) + 1))
    for ablation in summary['ablations']:
        for row in ablation['stages']:
            stage = row['stage']
            base = [per_class(osp.join(args.work_dir, f'seed{s}'), stage)
                    for s in seeds]
            abl = [per_class(osp.join(args.work_dir, 'ablations',
                                      folder(ablation['name']), f'seed{s}'),
                             stage) for s in seeds]
            cells = []
            for cls in args.classes + ['mean']:
                if cls == 'mean':
                    b = mean([mean([r[c] for c in args.classes])
                              for r in base])
                    a = mean([mean([r[c] for c in args.classes])
                              for r in abl])
                else:
                    b = mean([r[cls] for r in base])
                    a = mean([r[cls] for r in abl])
                cells.append(f'{b:.1f} -> {a:.1f}')
            print(f'| {ablation["name"]} | {row["label"]} | ' +
                  ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
