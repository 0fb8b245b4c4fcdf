"""The synthetic main job on another generated shift: the same configs and
defaults, only the generator's arguments (and so the data folder) changed.

    python docs/measurements/other_shift.py OUT seed=1 [shift=100 ...]
    python tools/ddb_pipeline.py OUT/ddb_synthetic.py [--seeds 0]

writes into OUT one leaf config per stage config of
``configs/synthetic/ddb_synthetic.py`` (each inherits the repository's
config and overrides the ``synthetic`` generator arguments and the
``data_root`` of every dataset in it) and a pipeline config wired to them.
The data is generated on first use into ``data/synthetic_<k><v>...`` (e.g.
``data/synthetic_seed1``), beside the default demo's ``data/synthetic``.
"""
import argparse
import copy
import os
import os.path as osp
import pprint

from mmengine.config import Config

from mmseg_ddb.utils.paths import repo_path

PIPELINE = repo_path('configs', 'synthetic', 'ddb_synthetic.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_override(items):
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f'error: {item!r}: expected KEY=VALUE')
        out[key] = int(value) if value.lstrip('-').isdigit() else value
    return out


def rerooted(dataset: dict, override: dict, root: str):
    """``dataset`` with every nested dataset that has ``synthetic`` arguments
    moved to ``root`` with ``override``; None if none has."""
    dataset = copy.deepcopy(dataset)
    changed = False
    for part in [dataset] + [dataset.get(k) for k in ('source', 'target')
                             if isinstance(dataset.get(k), dict)]:
        if not isinstance(part.get('synthetic'), dict):
            continue
        old_root = part['synthetic']['root']
        part['synthetic'] = dict(part['synthetic'], **override, root=root)
        if str(part.get('data_root', '')).startswith(old_root):
            part['data_root'] = root + part['data_root'][len(old_root):]
        changed = True
    return dataset if changed else None


def write_leaf(config: str, out_dir: str, override: dict, root: str) -> str:
    cfg = Config.fromfile(repo_path(config))
    lines = [f'_base_ = [{repo_path(config)!r}]']
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset is None:
            continue
        new = rerooted(dataset.to_dict(), override, root)
        if new is not None:
            lines.append(f'{loader} = dict(dataset={pprint.pformat(new)})')
    path = osp.join(out_dir, osp.basename(config))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='folder for the leaf configs')
    parser.add_argument('override', nargs='+', help='generator arguments, '
                        'KEY=VALUE (seed, shift, thing_scale, ...)')
    args = parser.parse_args()
    override = parse_override(args.override)
    root = 'data/synthetic_' + '_'.join(f'{k}{v}' for k, v in
                                        sorted(override.items()))
    os.makedirs(args.out, exist_ok=True)
    pipeline = Config.fromfile(PIPELINE).pipeline.to_dict()

    def leaf(config):
        return write_leaf(config, args.out, override, root)
    for key in ('init', 'reference', 'oracle'):
        if isinstance(pipeline.get(key), dict):
            pipeline[key]['config'] = leaf(pipeline[key]['config'])
    for r in pipeline['rounds']:
        r['st'] = {k: leaf(v) for k, v in r['st'].items()}
        r['ckd'] = leaf(r['ckd'])
    path = osp.join(args.out, 'ddb_synthetic.py')
    with open(path, 'w') as f:
        f.write(f'# {PIPELINE} with the generator arguments {override}\n'
                f'pipeline = {pprint.pformat(pipeline)}\n')
    print(f'{path} (data: {root})')


if __name__ == '__main__':
    main()
