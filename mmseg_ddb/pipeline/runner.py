"""Runs a DDB pipeline stage by stage, resumably (DESIGN.md section 4).

Every stage runs as a child process of the per-stage tools
(``tools/train.py``, ``tools/test.py``, ``cal_prototype.py``), so the
pipeline does exactly what a user running the stages by hand would, and an
interrupted pipeline leaves the same resumable state. This module
orchestrates; :mod:`.plan` says which stages there are, :mod:`.decide`
whether each one runs, :mod:`.launch` starts it, :mod:`.recovery` cleans up
after a crash, :mod:`.cache` keeps the shared stages across work dirs and
:mod:`.report` writes the summary.
"""
import json
import os
import os.path as osp
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

from ..engine.monitor_hook import MONITOR_FILE
from ..errors import ConfigError
from ..utils import load_config
from ..utils.fileio import remove_stale_tmp, write_json_atomic
from .cache import CACHE_ENV, cache_key, cache_root
from .cache import lookup as lookup_cached
from .cache import restore as restore_cached
from .cache import store as store_cached
from .decide import check_wiring, decide, resolved_config, stage_signature
from .launch import Launcher, PipelineError, split_devices
from .manifest import Manifest, sha256_file
from .plan import PATHS, Stage, build_plan
from .recovery import repair_last_checkpoint, set_aside
from .report import add_debug_grids, build_summary, format_summary, plot_summary, write_summary_page

__all__ = ['PipelineError', 'PipelineRunner', 'default_work_dir',
           'format_summary']


def default_work_dir(config: str) -> str:
    """``work_dirs/<config name>``, absolute."""
    name = osp.splitext(osp.basename(config))[0]
    return osp.abspath(osp.join('work_dirs', name))


class PipelineRunner:
    """Plan, run and summarise a pipeline config.

    Args:
        config (str): The pipeline config file.
        work_dir (str, optional): Default ``work_dirs/<config name>``.
        gpus (int): GPUs per training stage (torchrun DDP when > 1).
        launcher (str): ``'none'`` / ``'pytorch'`` (torchrun) or
            ``'slurm'`` (each training stage through ``srun``).
        parallel_paths (bool): Run a round's two ST paths, each followed by
            its prototype pass, side by side, each on half of the GPUs; on a
            machine without CUDA and with one process per stage, each on
            half of the CPU cores (``--threads``), with the reference and
            the oracle beside the first CKD (:meth:`schedule`).
        verbose (bool): Stream the stages' logs to the console.
        python (str): Interpreter for the stages.
        amp (bool): Train, compute prototypes and test in bf16 mixed
            precision (``--amp`` of each tool); part of every stage's
            signature, so switching it redoes the stages.
        channels_last (bool): Train and test in channels_last memory format
            (``--channels-last`` of train.py and test.py); a speed option,
            not part of the signatures (the same network, other kernels).
        seed (int, optional): ``--seed`` of every training stage; part of
            their signatures when given (None: no seed passed, signatures
            as without this option).
        oracle (bool): Run the config's ``oracle`` stage (``False``:
            ``--no-oracle``).
    """

    def __init__(self, config: str, work_dir: Optional[str] = None,
                 gpus: int = 1, launcher: str = 'none',
                 parallel_paths: bool = False, verbose: bool = False,
                 python: str = sys.executable, amp: bool = False,
                 channels_last: bool = False, seed: Optional[int] = None,
                 oracle: bool = True):
        self.config_path = config
        cfg = load_config(config)
        if 'pipeline' not in cfg:
            raise ConfigError(f'{config} is not a pipeline config (it has no '
                              '`pipeline = dict(...)`)')
        self.pipeline = cfg.pipeline.to_dict() if hasattr(
            cfg.pipeline, 'to_dict') else dict(cfg.pipeline)
        self.work_dir = osp.abspath(work_dir) if work_dir else \
            default_work_dir(config)
        if gpus < 0:
            raise ConfigError(f'--gpus must be >= 0, got {gpus}')
        self.gpus = gpus
        self.parallel_paths = parallel_paths
        self.lane_threads = self._lane_threads(parallel_paths, gpus, launcher)
        self.launch = Launcher(python=python, launcher=launcher, amp=amp,
                               channels_last=channels_last, seed=seed,
                               verbose=verbose)
        self.prototype_epochs = int(self.pipeline.get('prototype_epochs', 4))
        self.stages: List[Stage] = build_plan(
            self.pipeline, self._teacher_names, oracle=oracle)
        self.manifest = Manifest(osp.join(self.work_dir, 'manifest.json'))
        # the stages the whole plan runs side by side (stage_threads)
        self._lane_stages = frozenset(
            s.name for step in self.schedule(self.stages) if len(step) > 1
            for lane in step for s in lane)
        self._lock = threading.Lock()
        self._port = 29500 + os.getpid() % 1000

    # -- planning --------------------------------------------------------------
    @staticmethod
    def _teacher_names(config: str) -> List[str]:
        cfg = load_config(config)
        teachers = (cfg.get('uda') or {}).get('teachers') or []
        return [t.get('name') for t in teachers]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f'no stage {name!r}; stages: '
                          f'{", ".join(s.name for s in self.stages)}')

    def stage_dir(self, stage: Stage) -> str:
        return osp.join(self.work_dir, stage.name)

    def planned_output(self, stage: Stage) -> Dict[str, str]:
        wd = self.stage_dir(stage)
        if stage.kind == 'prototypes':
            return dict(prototypes=osp.join(wd, 'prototypes.pth'))
        return dict(checkpoint=osp.join(wd, 'iter_<last>.pth'))

    def resolve_inputs(self, stage: Stage, dry: bool = False) -> dict:
        """``{key: {path, sha256}}`` from the manifest's earlier outputs."""
        inputs = {}
        for key, (src, out_key) in stage.inputs.items():
            path = self.manifest.output(src, out_key)
            if path is None or not osp.isfile(path):
                if dry:
                    path = f'<{src}.{out_key}>'
                    inputs[key] = dict(path=path, sha256=None)
                    continue
                raise PipelineError(
                    f'stage {stage.name}: input {key} ({src}.{out_key}) is '
                    f'missing; run stage {src} first')
            inputs[key] = dict(path=path, sha256=None if dry else
                               self._checksum(src, out_key, path))
        return inputs

    def _checksum(self, src: str, out_key: str, path: str) -> str:
        recorded = self.manifest.stages.get(src, {}).get('outputs', {}).get(
            out_key, {})
        return recorded.get('sha256') or sha256_file(path)

    def options(self, stage: Stage, inputs: dict) -> Dict[str, object]:
        """The stage's ``--cfg-options``: its wired inputs' paths, then its
        ``overrides`` (an ablation's switch)."""
        options = {k: inputs[v]['path'] for k, v in stage.wiring.items()}
        options.update(stage.overrides)
        return options

    def signature(self, stage: Stage, inputs: dict, options: dict) -> str:
        return stage_signature(stage, inputs, options, self.prototype_epochs,
                               amp=self.launch.amp,
                               seed=None if stage.shared else self.launch.seed)

    # -- running ---------------------------------------------------------------
    def _train_cmd(self, stage: Stage, options: dict, resume: bool,
                   gpus: int, port: int,
                   threads: Optional[int] = None) -> List[str]:
        launch = replace(self.launch, seed=None) if stage.shared \
            else self.launch
        extra = ['--final-metrics', self._metrics_path(stage)] \
            if self._reuses_validation(stage) else []
        return launch.train_cmd(stage.config, self.stage_dir(stage), options,
                                resume, gpus, port, extra, threads)

    def _reuses_validation(self, stage: Stage) -> bool:
        """Whether the stage's score can come from the validation after its
        last iteration (``train.py --final-metrics``) instead of a second
        process evaluating the checkpoint: that validation runs in fp32, as
        ``tools/test.py`` without ``--amp``."""
        return stage.evaluate and not self.launch.amp

    def _metrics_path(self, stage: Stage) -> str:
        return osp.join(self.stage_dir(stage), 'metrics.json')

    def _final_validation(self, ckpt: str) -> Optional[dict]:
        """The metrics ``--final-metrics`` wrote for ``ckpt``, if any."""
        path = osp.join(osp.dirname(ckpt), 'metrics.json')
        if not osp.isfile(path):
            return None
        with open(path) as f:
            record = json.load(f)
        return record if record.get('checkpoint') == ckpt else None

    def _last_checkpoint(self, stage: Stage) -> str:
        marker = osp.join(self.stage_dir(stage), 'last_checkpoint')
        if not osp.isfile(marker):
            raise PipelineError(f'stage {stage.name}: training ended without '
                                f'a checkpoint ({marker} missing)')
        with open(marker) as f:
            path = f.read().strip()
        if not osp.isfile(path):
            raise PipelineError(f'stage {stage.name}: {path} missing')
        return path

    def _run_train(self, stage: Stage, options: dict, resume: bool,
                   gpus: int, port: int, env: Optional[dict],
                   threads: Optional[int] = None) -> dict:
        log = osp.join(self.stage_dir(stage), 'stage.log')
        out = self._metrics_path(stage)
        if osp.isfile(out):  # a score of an earlier run is never taken
            os.remove(out)
        self.launch.stream(self._train_cmd(stage, options, resume, gpus,
                                           port, threads), log, stage.name,
                           env)
        ckpt = self._last_checkpoint(stage)
        outputs = dict(checkpoint=dict(path=ckpt, sha256=sha256_file(ckpt)))
        pseudo_labels = None
        report = osp.join(self.stage_dir(stage), MONITOR_FILE)
        if osp.isfile(report):  # a monitored stage (uda.monitor_pseudo_labels)
            with open(report) as f:
                pseudo_labels = json.load(f)
        metrics = None
        if stage.evaluate:
            metrics = self._final_validation(ckpt) \
                if self._reuses_validation(stage) else None
            if metrics is None:
                cmd = self.launch.test_cmd(stage.config, ckpt, out, osp.join(
                    self.stage_dir(stage), 'test'), threads)
                self.launch.stream(cmd, log, f'{stage.name} (test)', env)
                with open(out) as f:
                    metrics = json.load(f)
            outputs['metrics'] = dict(path=out, sha256=sha256_file(out))
        return dict(outputs=outputs, metrics=metrics,
                    pseudo_labels=pseudo_labels)

    def _run_prototypes(self, stage: Stage, inputs: dict,
                        env: Optional[dict],
                        threads: Optional[int] = None) -> dict:
        out = osp.join(self.stage_dir(stage), 'prototypes.pth')
        cmd = self.launch.prototype_cmd(
            stage.config, inputs['checkpoint']['path'], self.prototype_epochs,
            out, threads)
        self.launch.stream(cmd, osp.join(self.stage_dir(stage), 'stage.log'),
                           stage.name, env)
        return dict(outputs=dict(
            prototypes=dict(path=out, sha256=sha256_file(out))), metrics=None)

    def decide(self, stage: Stage, signature: str, force: bool):
        """``(action, reason)``: skip, resume or fresh (:func:`.decide`)."""
        return decide(self.manifest.stages.get(stage.name, {}), stage.kind,
                      signature, force)

    def _restore_cached(self, stage: Stage, signature: str, inputs: dict,
                        options: dict, reason: str) -> bool:
        """For a shared stage about to train afresh: copy its outputs from
        the stage cache (:mod:`.cache`) when it holds them, record the
        stage done and return True."""
        if not stage.shared or cache_root() is None:
            return False
        entry = lookup_cached(cache_key(signature,
                                        resolved_config(stage, options)))
        if entry is None:
            return False
        started = time.time()
        result = restore_cached(entry, self.stage_dir(stage))
        with self._lock:
            self.manifest.update(
                stage.name, status='done', kind=stage.kind, label=stage.label,
                config=stage.config, signature=signature, inputs=inputs,
                options=options, reason=f'{reason}; restored from the stage '
                f'cache {entry["folder"]}',
                started=time.strftime('%Y-%m-%d %H:%M:%S'),
                seconds=round(time.time() - started, 1), error=None,
                **result)
        print(f'[{stage.name}] restored from the stage cache '
              f'{entry["folder"]} (trained there in {entry["seconds"]:.0f} s;'
              f' {CACHE_ENV}=0 trains it again)')
        return True

    def run_stage(self, stage: Stage, force: bool = False, gpus: int = None,
                  port: int = None, env: Optional[dict] = None,
                  threads: Optional[int] = None) -> str:
        """Run ``stage`` unless it is up to date (``force``: run it
        anyway) on ``gpus`` GPUs (default the runner's) with ``env`` added
        to its environment and ``threads`` CPU threads (None: torch's
        default); returns what was done: skip, resume, fresh or cached."""
        inputs = self.resolve_inputs(stage)
        options = self.options(stage, inputs)
        signature = self.signature(stage, inputs, options)
        with self._lock:
            action, reason = self.decide(stage, signature, force)
        if action == 'skip':
            print(f'[{stage.name}] {reason}, skipped')
            return action
        print(f'[{stage.name}] {reason}')
        remove_stale_tmp(self.stage_dir(stage), recursive=True)
        if action == 'resume':
            repair_last_checkpoint(self.stage_dir(stage))
        if action == 'fresh':
            aside = set_aside(self.stage_dir(stage))
            if aside:
                print(f'  previous outputs of {stage.name} kept in {aside}')
            if threads is None and self._restore_cached(
                    stage, signature, inputs, options, reason):
                return 'cached'
        started = time.time()
        with self._lock:
            self.manifest.update(
                stage.name, status='running', kind=stage.kind,
                label=stage.label, config=stage.config, signature=signature,
                inputs=inputs, options=options, reason=reason,
                started=time.strftime('%Y-%m-%d %H:%M:%S'), outputs={},
                metrics=None, pseudo_labels=None, threads=threads)
        try:
            if stage.kind == 'train':
                result = self._run_train(
                    stage, options, action == 'resume',
                    self.gpus if gpus is None else gpus,
                    port or self._port, env, threads)
            else:
                result = self._run_prototypes(stage, inputs, env, threads)
        except BaseException as exc:
            with self._lock:
                self.manifest.update(stage.name, status='failed',
                                     error=str(exc)[:500])
            raise
        seconds = round(time.time() - started, 1)
        with self._lock:
            self.manifest.update(stage.name, status='done', seconds=seconds,
                                 error=None, **result)
        # the cache holds results of torch's default thread count only
        if stage.shared and threads is None and cache_root() is not None:
            stored = store_cached(cache_key(signature, resolved_config(
                stage, options)), result, seconds, stage.name)
            if stored:
                print(f'  {stage.name} stored in the stage cache {stored}')
        miou = (result.get('metrics') or {}).get('mIoU')
        extra = f', target mIoU {miou:.2f}' if miou is not None else ''
        print(f'[{stage.name}] done in {seconds:.0f} s{extra}')
        return action

    def _selected(self, start: Optional[str], only: Optional[str],
                  subset: Optional[Sequence[str]] = None):
        names = [s.name for s in self.stages]
        if subset is not None:
            for name in subset:
                self.stage(name)
            return [s for s in self.stages if s.name in subset], set()
        if only:
            self.stage(only)
            return [self.stage(only)], {only}
        if start:
            self.stage(start)
            i = names.index(start)
            return self.stages, set(names[i:])
        return self.stages, set()

    def run(self, start: Optional[str] = None, only: Optional[str] = None,
            subset: Optional[Sequence[str]] = None) -> dict:
        """Run the plan (skipping what is up to date), from ``start`` on
        (forced), ``only`` one stage (forced), or just the stages of
        ``subset`` (in plan order, each skipped when up to date); returns
        the summary."""
        stages, forced = self._selected(start, only, subset)
        check_wiring(stages)
        os.makedirs(self.work_dir, exist_ok=True)
        remove_stale_tmp(self.work_dir, recursive=False)
        self.manifest.data['pipeline'] = dict(
            config=osp.abspath(self.config_path), work_dir=self.work_dir,
            stages=[s.name for s in self.stages])
        self.manifest.save()
        for lanes in self.schedule(stages):
            if len(lanes) == 1:
                for stage in lanes[0]:
                    self.run_stage(stage, force=stage.name in forced,
                                   threads=self.stage_threads(stage))
            else:
                self._run_lanes(lanes, forced)
        return self.write_summary()

    # -- side by side ----------------------------------------------------------
    @staticmethod
    def _lane_threads(parallel_paths: bool, gpus: int,
                      launcher: str) -> Optional[int]:
        """CPU threads of each of two stages run side by side on a machine
        without CUDA (``parallel_paths``, one process per stage): half of
        torch's threads; None where the lanes split GPUs, or are off."""
        if not parallel_paths or gpus > 1 or launcher != 'none':
            return None
        import torch
        if torch.cuda.is_available():
            return None
        cores = torch.get_num_threads()
        if cores < 2:
            print('note: --parallel-paths needs at least 2 CPU threads (torch '
                  f'has {cores}); the stages run one at a time')
            return None
        return cores // 2

    def _side_by_side(self) -> bool:
        return self.lane_threads is not None or (
            self.parallel_paths and self.gpus >= 2 and
            self.launch.launcher != 'slurm')

    def schedule(self, stages: Sequence[Stage]) -> List[List[List[Stage]]]:
        """``stages`` as steps run one after the other; a step is a list of
        lanes run side by side, each lane a list of stages run in order.

        Without ``parallel_paths`` every step is one lane of one stage. With
        it, a round's two ST paths run side by side, each followed in its
        lane by its prototype pass; on the CPU (:attr:`lane_threads`) also
        the reference and the oracle (which no stage reads), one after the
        other beside the first CKD. Which stages share a step depends on
        ``stages`` only, never on timing; a stage's thread count (and with
        it its floating-point results) on the whole plan only
        (:meth:`stage_threads`)."""
        if not self._side_by_side():
            return [[[stage]] for stage in stages]
        rest = list(stages)
        reported: List[Stage] = []
        if self.lane_threads is not None and any(
                s.name.endswith('_ckd') for s in rest):
            reported = [s for s in rest if s.name in ('reference', 'oracle')]
            rest = [s for s in rest if s not in reported]
        steps = []
        i = 0
        while i < len(rest):
            stage = rest[i]
            if i + 1 < len(rest) and self._path_pair(stage, rest[i + 1]):
                lanes = [[stage], [rest[i + 1]]]
                i += 2
                while i < len(rest) and rest[i].kind == 'prototypes':
                    lane = [lane for lane in lanes if lane[0].name ==
                            rest[i].inputs['checkpoint'][0]]
                    if not lane:
                        break
                    lane[0].append(rest[i])
                    i += 1
                steps.append(lanes)
                continue
            if reported and stage.name.endswith('_ckd'):
                steps.append([[stage], reported])
                reported = []
            else:
                steps.append([[stage]])
            i += 1
        return steps

    def stage_threads(self, stage: Stage) -> Optional[int]:
        """The CPU threads ``stage`` runs on: :attr:`lane_threads` where the
        whole plan's :meth:`schedule` runs it side by side, also when it
        runs alone because its partner is not selected (``--only``, ``--from``
        of a finished work dir, an ablation), so that it gives the numbers it
        gives in the whole run; None (torch's default) otherwise."""
        return self.lane_threads if stage.name in self._lane_stages else None

    @staticmethod
    def _path_pair(a: Stage, b: Stage) -> bool:
        """Whether ``a``, ``b`` are the two ST paths of one round."""
        cu, ca = (f'_st_{p}' for p in PATHS)
        return a.kind == b.kind == 'train' and a.name.endswith(cu) and \
            b.name == a.name[:-len(cu)] + ca

    def _run_lanes(self, lanes: List[List[Stage]], forced) -> None:
        """Run ``lanes`` side by side, each on its share of the GPUs or of
        the CPU threads; a failed stage ends its lane, the other lanes run
        on, and the first failure is raised when all have ended."""
        if self.lane_threads is not None:
            shares = [{}] * len(lanes)  # threads: stage_threads
        else:
            shares = [dict(gpus=self.gpus // len(lanes),
                           env=dict(CUDA_VISIBLE_DEVICES=devices))
                      for devices in split_devices(self.gpus, len(lanes))]

        def run_lane(k: int, lane: List[Stage], share: dict) -> None:
            for stage in lane:
                self.run_stage(stage, stage.name in forced,
                               port=self._port + 1 + k,
                               threads=self.stage_threads(stage), **share)

        with ThreadPoolExecutor(len(lanes)) as pool:
            jobs = [pool.submit(run_lane, k, lane, share)
                    for k, (lane, share) in enumerate(zip(lanes, shares))]
            for job in jobs:
                job.result()

    # -- reporting -------------------------------------------------------------
    def plan_lines(self) -> List[str]:
        seed = '' if self.launch.seed is None else \
            f' (seed {self.launch.seed})'
        lines = [f'pipeline {self.config_path} -> {self.work_dir}{seed}']
        for stage in self.stages:
            inputs = self.resolve_inputs(stage, dry=True)
            rec = self.manifest.stages.get(stage.name, {})
            lines.append(f'{stage.name:<14} {stage.kind:<10} '
                         f'{rec.get("status", "pending"):<8} {stage.config}')
            for key, value in self.options(stage, inputs).items():
                lines.append(f'    {key} = {value}')
            for key, path in self.planned_output(stage).items():
                lines.append(f'    -> {key}: {path}')
        return lines

    def write_summary(self) -> dict:
        """Write ``summary.json`` (:func:`.build_summary`) and
        ``summary.png``, print the table; returns the summary."""
        summary = build_summary(osp.abspath(self.config_path), self.stages,
                                self.manifest.stages)
        add_debug_grids(summary['stages'], {s.name: self.stage_dir(s)
                                            for s in self.stages},
                        self.work_dir)
        write_json_atomic(osp.join(self.work_dir, 'summary.json'), summary)
        print(format_summary(summary['stages']))
        chart = any(r['mIoU'] is not None for r in summary['stages'])
        if chart:
            plot_summary(summary['stages'],
                         osp.join(self.work_dir, 'summary.png'))
        write_summary_page(summary['stages'],
                           osp.join(self.work_dir, 'summary.md'),
                           chart='summary.png' if chart else None)
        return summary
