"""Ablations of a finished pipeline: the stages a switch touches, rerun with
it changed, over the seeds, reusing everything it does not touch.

    ddb-pipeline CONFIG --ablate uda.renormalize=True [KEY=VALUE ...]
        [--ablate-stages r1_ckd r2_ckd] [--no-downstream] [--seeds 0 1 2]
    ddb-pipeline CONFIG --ablate ablations.py      # a list of several

Each ablation runs in ``WORK_DIR/ablations/<name>/`` (``.../seed<S>/`` with
``--seeds``), a pipeline work dir whose manifest starts as a copy of the
finished one's records. The switch becomes a ``--cfg-options`` entry of the
stages it applies to (``--ablate-stages``, default: every adaptation stage
whose config has the key), so their signatures change and they run again;
every stage downstream of them runs again too (its inputs' checksums
change); every other stage (init, reference, oracle, untouched teachers and
prototypes) is up to date and is read from the finished work dir. With
``--no-downstream`` (or ``downstream=False`` in an ablation config) only the
switched stages run: the later stages are neither rerun nor reported, and
the finished work dir needs only the switched stages and what they read (a
round-1 ablation can start from a work dir that has finished round 1). A
rerun of the same command skips what is done and resumes what was
interrupted; the summary is rewritten after each ablation.

``WORK_DIR/ablations/summary.{json,md}`` and the console give per ablation
and rerun stage the mIoU per seed, mean and std, the difference from the
default run with the per-seed differences, and the mIoU of the pseudo-labels
the stage trained on (monitored stages).

An ablation config is a Python file with ``ablations = [dict(name=...,
options=dict(KEY=VALUE, ...), stages=[...], downstream=False), ...]``
(``name``, ``stages`` and ``downstream`` optional; ``options`` values are
config values).
"""
import copy
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction

from ..errors import ConfigError
from ..utils import check_cfg_options, load_config
from ..utils.fileio import atomic_write, write_json_atomic
from .manifest import Manifest
from .report import trained_on
from .runner import PipelineRunner, default_work_dir
from .seeds import _mean, _std, seed_work_dir

#: stages no switch of a DDB method touches by default
REPORTED = ('init', 'reference', 'oracle')


def parse_switch(text: str) -> dict:
    """``'KEY=VALUE'`` -> an ablation ``dict(name, options, stages=None)``;
    the value is parsed as ``--cfg-options`` parses it."""
    key, sep, value = text.partition('=')
    if not sep or not key or not value:
        raise ConfigError(f'--ablate {text!r}: expected KEY=VALUE (e.g. '
                          'uda.renormalize=True) or an ablation config file')
    return dict(name=text, options={key: DictAction._parse_iterable(value)},
                stages=None, downstream=True)


def load_ablations(items: Sequence[str]) -> List[dict]:
    """The ablations of ``--ablate``: each item a ``KEY=VALUE`` switch or an
    ablation config file (``ablations = [...]``)."""
    out = []
    for item in items:
        if item.endswith('.py'):
            if not osp.isfile(item):
                raise ConfigError(f'--ablate {item}: no such file')
            listed = Config.fromfile(item).to_dict().get('ablations')
            if not isinstance(listed, list) or not listed:
                raise ConfigError(f'{item}: expected ablations = [dict('
                                  'name=..., options=dict(KEY=VALUE), '
                                  'stages=[...]), ...]')
            for i, entry in enumerate(listed):
                options = entry.get('options') if isinstance(entry, dict) \
                    else None
                if not isinstance(options, dict) or not options:
                    raise ConfigError(f'{item}: ablations[{i}] needs '
                                      'options=dict(KEY=VALUE, ...)')
                name = entry.get('name') or ','.join(
                    f'{k}={v}' for k, v in options.items())
                downstream = entry.get('downstream', True)
                if not isinstance(downstream, bool):
                    raise ConfigError(f'{item}: ablations[{i}].downstream '
                                      'must be True or False')
                out.append(dict(name=str(name), options=dict(options),
                                stages=entry.get('stages'),
                                downstream=downstream))
        else:
            out.append(parse_switch(item))
    names = [a['name'] for a in out]
    if len(set(map(folder_name, names))) != len(names):
        raise ConfigError(f'--ablate: two ablations share a name: {names}')
    return out


def folder_name(name: str) -> str:
    """An ablation's folder under ``WORK_DIR/ablations``."""
    return re.sub(r'[^A-Za-z0-9._=+-]+', '_', name).strip('_') or 'ablation'


def ablation_dir(work_dir: str, name: str) -> str:
    return osp.join(work_dir, 'ablations', folder_name(name))


def target_stages(runner: PipelineRunner, ablation: dict) -> List[str]:
    """The stages the ablation's options are set on: its ``stages``, else
    every training stage other than init / reference / oracle whose config
    has every key. Each must have the keys (``ConfigError`` otherwise)."""
    names = ablation.get('stages')
    if names:
        stages = [runner.stage(n) for n in names]
    else:
        stages = [s for s in runner.stages
                  if s.kind == 'train' and s.name not in REPORTED]
    chosen = []
    for stage in stages:
        if stage.kind != 'train':
            raise ConfigError(f'--ablate-stages: {stage.name} is not a '
                              'training stage')
        try:
            check_cfg_options(load_config(stage.config), ablation['options'])
        except ConfigError as exc:
            if names:
                raise ConfigError(f'ablation {ablation["name"]!r}, stage '
                                  f'{stage.name}: {exc}') from exc
            continue
        chosen.append(stage.name)
    if not chosen:
        raise ConfigError(f'ablation {ablation["name"]!r}: no stage\'s config'
                          f' has {", ".join(ablation["options"])}; name the '
                          'stages with --ablate-stages')
    return chosen


def downstream_of(runner: PipelineRunner, names: Sequence[str]) -> List[str]:
    """The stages that read an output of ``names``, directly or through
    other stages, in plan order."""
    hit, out = set(names), []
    for stage in runner.stages:
        if stage.name not in hit and any(
                src in hit for src, _ in stage.inputs.values()):
            hit.add(stage.name)
            out.append(stage.name)
    return out


def upstream_of(runner: PipelineRunner, names: Sequence[str]) -> List[str]:
    """``names`` and every stage whose outputs they read, directly or
    through other stages, in plan order."""
    need = set(names)
    for stage in reversed(runner.stages):
        if stage.name in need:
            need.update(src for src, _ in stage.inputs.values())
    return [s.name for s in runner.stages if s.name in need]


def base_records(work_dir: str) -> Dict[str, dict]:
    """The finished pipeline's manifest records (``ConfigError`` when it has
    not run)."""
    path = osp.join(work_dir, 'manifest.json')
    if not osp.isfile(path):
        raise ConfigError(f'--ablate: {path} not found; run the pipeline '
                          'first (same CONFIG, --work-dir and --seeds)')
    return Manifest(path).stages


def ablation_runner(config: str, base_dir: str, out_dir: str,
                    ablation: dict, seed: Optional[int],
                    runner_args: dict) -> Tuple[PipelineRunner, List[str]]:
    """A runner for one ablation and seed in ``out_dir``: its manifest takes
    the finished run's records it does not hold yet (without the stages
    downstream of the switched ones when ``ablation['downstream']`` is
    False), and the ablation's options are set on its target stages. The
    finished run must have done every stage, or, without downstream, the
    switched stages and the stages they read. Returns the runner and the
    switched stages."""
    runner = PipelineRunner(config, out_dir, seed=seed, **runner_args)
    records = base_records(base_dir)
    targets = target_stages(runner, ablation)
    downstream = ablation.get('downstream', True)
    needed = [s.name for s in runner.stages] if downstream else \
        upstream_of(runner, targets)
    missing = [n for n in needed
               if records.get(n, {}).get('status') != 'done']
    if missing:
        what = 'run the pipeline to the end first' if downstream else \
            'run the pipeline until they are done first'
        raise ConfigError(f'--ablate: {base_dir} is not finished (stages '
                          f'{", ".join(missing)} not done); {what}')
    skip = set() if downstream else set(downstream_of(runner, targets))
    for name, record in records.items():
        if name not in runner.manifest.stages and name not in skip:
            runner.manifest.stages[name] = copy.deepcopy(record)
    for name in targets:
        runner.stage(name).overrides = dict(ablation['options'])
    return runner, targets


def run_ablations(config: str, work_dir: Optional[str],
                  ablations: Sequence[dict],
                  seeds: Optional[Sequence[int]] = None,
                  stages: Optional[Sequence[str]] = None,
                  downstream: bool = True, **runner_args) -> dict:
    """Run every ablation (for every seed, or once without ``--seeds``) and
    write the ablation summary (:func:`ablation_summary`) after each.
    ``stages`` / ``downstream=False`` (``--ablate-stages`` /
    ``--no-downstream``) apply to every ablation."""
    work_dir = osp.abspath(work_dir) if work_dir else default_work_dir(config)
    seed_list = list(seeds) if seeds else [None]
    results = []
    summary = None
    for ablation in ablations:
        if stages:
            ablation = dict(ablation, stages=list(stages))
        if not downstream:
            ablation = dict(ablation, downstream=False)
        per_seed = {}
        for seed in seed_list:
            base = work_dir if seed is None else seed_work_dir(work_dir, seed)
            out = ablation_dir(work_dir, ablation['name'])
            out = out if seed is None else seed_work_dir(out, seed)
            runner, targets = ablation_runner(config, base, out, ablation,
                                              seed, runner_args)
            print(f'=== ablation {ablation["name"]}'
                  f'{"" if seed is None else f" seed {seed}"} -> {out}')
            ablated = runner.run(subset=None if ablation.get(
                'downstream', True) else targets)
            default = runner_summary_of(config, base, seed, runner_args)
            finished = base_records(base)
            rerun = [s.name for s in runner.stages
                     if s.name in runner.manifest.stages and
                     runner.manifest.stages[s.name].get('signature') !=
                     finished.get(s.name, {}).get('signature')]
            per_seed[seed] = dict(ablated=ablated, default=default,
                                  rerun=rerun)
        results.append((ablation, per_seed))
        summary = ablation_summary(osp.abspath(config), seed_list, results)
        write_ablation_summary(osp.join(work_dir, 'ablations'), summary)
    return summary


def runner_summary_of(config: str, base: str, seed: Optional[int],
                      runner_args: dict) -> dict:
    """The finished run's summary rows (rebuilt from its manifest, so a
    summary file edited by hand plays no part)."""
    from .report import build_summary
    runner = PipelineRunner(config, base, seed=seed, **runner_args)
    return build_summary(osp.abspath(config), runner.stages,
                         runner.manifest.stages)


def _pl(row: Optional[dict]) -> Optional[float]:
    return (trained_on((row or {}).get('pseudo_labels')) or {}).get('mIoU')


def ablation_summary(config: str, seeds: List[Optional[int]],
                     results) -> dict:
    """``config``, ``seeds`` and ``ablations``: per ablation ``name``,
    ``options`` and ``stages``, one entry per rerun training stage:
    ``stage``, ``label``, ``mIoU_per_seed`` / ``mIoU_mean`` / ``mIoU_std``
    (population std) of the ablated run, ``default_per_seed`` /
    ``default_mean`` of the finished run, ``diff_per_seed`` (ablated -
    default) / ``diff_mean``, and ``pl_mIoU_per_seed`` / ``pl_mIoU_mean`` /
    ``pl_default_mean`` (the mIoU of the pseudo-labels the stage trained on,
    monitored stages only)."""
    out = []
    for ablation, per_seed in results:
        rerun = list(dict.fromkeys(n for r in per_seed.values()
                                   for n in r['rerun']))
        rows = []
        for name in rerun:
            def row_of(summary):
                return next((r for r in summary['stages']
                             if r['stage'] == name), None)
            ablated = [row_of(per_seed[s]['ablated']) for s in seeds]
            default = [row_of(per_seed[s]['default']) for s in seeds]
            if all(r is None for r in ablated):
                continue
            miou = [(r or {}).get('mIoU') for r in ablated]
            base = [(r or {}).get('mIoU') for r in default]
            diff = [None if a is None or b is None else a - b
                    for a, b in zip(miou, base)]
            pl = [_pl(r) for r in ablated]
            label = next(r['label'] for r in ablated if r is not None)
            rows.append(dict(
                stage=name, label=label, mIoU_per_seed=miou,
                mIoU_mean=_mean(miou), mIoU_std=_std(miou),
                default_per_seed=base, default_mean=_mean(base),
                diff_per_seed=diff, diff_mean=_mean(diff),
                pl_mIoU_per_seed=pl, pl_mIoU_mean=_mean(pl),
                pl_default_mean=_mean([_pl(r) for r in default])))
        out.append(dict(name=ablation['name'],
                        options={k: repr(v) if not isinstance(
                            v, (bool, int, float, str)) else v
                            for k, v in ablation['options'].items()},
                        stages=rows))
    return dict(config=config, seeds=seeds, ablations=out)


def _num(value, sign: bool = False) -> str:
    if value is None:
        return '-'
    return f'{value:+.2f}' if sign else f'{value:.2f}'


def format_ablation_summary(summary: dict) -> str:
    """The console / markdown table: one line per ablation and rerun
    stage."""
    lines = ['| ablation | stage | mIoU mean ± std | default | diff | '
             'diff per seed | PL mIoU (default) |',
             '|---|---|---|---|---|---|---|']
    for ablation in summary['ablations']:
        for r in ablation['stages']:
            mean = '-' if r['mIoU_mean'] is None else \
                f'{r["mIoU_mean"]:.2f} ± {r["mIoU_std"]:.2f}'
            per_seed = ' '.join(_num(d, sign=True)
                                for d in r['diff_per_seed'])
            pl = '-' if r['pl_mIoU_mean'] is None else \
                f'{r["pl_mIoU_mean"]:.2f} ({_num(r["pl_default_mean"])})'
            lines.append(f'| {ablation["name"]} | {r["label"]} | {mean} | '
                         f'{_num(r["default_mean"])} | '
                         f'{_num(r["diff_mean"], sign=True)} | {per_seed} | '
                         f'{pl} |')
    return '\n'.join(lines)


def write_ablation_summary(folder: str, summary: dict) -> None:
    """``folder/summary.json`` and ``summary.md`` (atomically); prints the
    table."""
    table = format_ablation_summary(summary)
    write_json_atomic(osp.join(folder, 'summary.json'), summary)
    seeds = ', '.join(str(s) for s in summary['seeds'] if s is not None)
    atomic_write(osp.join(folder, 'summary.md'), '\n'.join([
        '# Ablations', '', f'pipeline {summary["config"]}'
        + (f', seeds {seeds}' if seeds else ''), '',
        'diff = ablated - default, per seed and its mean; PL mIoU: the '
        'pseudo-labels the stage trained on, against the target labels.',
        '', table, '']), mode='w', encoding='utf-8')
    print(table)
