"""Runs a DDB pipeline stage by stage, resumably (DESIGN.md section 4).

Every stage runs as a child process of the per-stage tools
(``tools/train.py``, ``tools/test.py``, ``cal_prototype.py``), so the
pipeline does exactly what a user running the stages by hand would, and an
interrupted pipeline leaves the same resumable state.
"""
import ctypes
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

from ..errors import ConfigError, DDBError
from ..utils import load_config
from ..utils.fileio import write_json_atomic
from .manifest import Manifest, sha256_file, sha256_text
from .plan import Stage, build_plan

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')


class PipelineError(DDBError):
    """A stage failed; the message names it and its log."""


def _remove_stale_tmp(folder: str, recursive: bool) -> None:
    """Delete the ``.tmp-*`` files of writers that were killed mid-write (a
    stage or the pipeline itself): partial checkpoints, prototype or JSON
    files that nothing will complete or rename."""
    if not osp.isdir(folder):
        return
    walk = os.walk(folder) if recursive else [(folder, None,
                                               os.listdir(folder))]
    for dirpath, _, names in walk:
        for name in names:
            path = osp.join(dirpath, name)
            if name.startswith('.tmp-') and osp.isfile(path):
                os.remove(path)


def _repair_last_checkpoint(folder: str) -> None:
    """Point ``folder/last_checkpoint`` at the newest complete checkpoint
    before ``--resume``. mmengine writes that marker in place (a kill there
    leaves it empty) and, with ``max_keep_ckpts``, deletes the previous
    checkpoint before it writes the next one (a kill there leaves it naming
    a deleted file); either way ``--resume`` would fail on every rerun.
    Checkpoints are written atomically (:mod:`mmseg_ddb.compat`) and stale
    temporary files are gone, so every ``iter_*.pth`` left is complete."""
    marker = osp.join(folder, 'last_checkpoint')
    if not osp.isfile(marker):
        return
    with open(marker) as f:
        path = f.read().strip()
    if path and osp.isfile(path):
        return
    found = []
    for name in os.listdir(folder):
        m = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', name)
        if m and osp.isfile(osp.join(folder, name)):
            found.append((int(m.group(1)), osp.join(folder, name)))
    if not found:
        os.remove(marker)  # nothing to resume from: start the stage over
        return
    tmp = osp.join(folder, f'.tmp-{os.getpid()}-last_checkpoint')
    with open(tmp, 'w') as f:
        f.write(max(found)[1])
    os.replace(tmp, marker)


def _die_with_parent():  # runs in the child before exec
    try:
        ctypes.CDLL('libc.so.6').prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class PipelineRunner:
    """Plan, run and summarise a pipeline config.

    Args:
        config (str): The pipeline config file.
        work_dir (str, optional): Default ``work_dirs/<config name>``.
        gpus (int): GPUs per training stage (torchrun DDP when > 1).
        launcher (str): ``'none'`` / ``'pytorch'`` (torchrun) or
            ``'slurm'`` (each training stage through ``srun``).
        parallel_paths (bool): Run a round's two ST paths side by side, each
            on half of the GPUs.
        verbose (bool): Stream the stages' logs to the console.
        python (str): Interpreter for the stages.
        amp (bool): Train, compute prototypes and test in bf16 mixed
            precision (``--amp`` of each tool); part of every stage's
            signature, so switching it redoes the stages.
        channels_last (bool): Train and test in channels_last memory format
            (``--channels-last`` of train.py and test.py); a speed option,
            not part of the signatures (the same network, other kernels).
    """

    def __init__(self, config: str, work_dir: Optional[str] = None,
                 gpus: int = 1, launcher: str = 'none',
                 parallel_paths: bool = False, verbose: bool = False,
                 python: str = sys.executable, amp: bool = False,
                 channels_last: bool = False):
        self.config_path = config
        cfg = load_config(config)
        if 'pipeline' not in cfg:
            raise ConfigError(f'{config} is not a pipeline config (it has no '
                              '`pipeline = dict(...)`)')
        self.pipeline = cfg.pipeline.to_dict() if hasattr(
            cfg.pipeline, 'to_dict') else dict(cfg.pipeline)
        name = osp.splitext(osp.basename(config))[0]
        self.work_dir = osp.abspath(work_dir or osp.join('work_dirs', name))
        if gpus < 0:
            raise ConfigError(f'--gpus must be >= 0, got {gpus}')
        self.gpus = gpus
        self.launcher = launcher
        self.parallel_paths = parallel_paths
        self.verbose = verbose
        self.python = python
        self.amp = amp
        self.channels_last = channels_last
        self.prototype_epochs = int(self.pipeline.get('prototype_epochs', 4))
        self.stages: List[Stage] = build_plan(self.pipeline,
                                              self._teacher_names)
        self.manifest = Manifest(osp.join(self.work_dir, 'manifest.json'))
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

    def options(self, stage: Stage, inputs: dict) -> Dict[str, str]:
        return {k: inputs[v]['path'] for k, v in stage.wiring.items()}

    def signature(self, stage: Stage, inputs: dict, options: dict) -> str:
        cfg = load_config(stage.config)
        if options and stage.kind == 'train':
            cfg.merge_from_dict(options)
        blob = json.dumps(dict(
            kind=stage.kind, config=cfg.to_dict(),
            inputs={k: v['sha256'] for k, v in inputs.items()},
            epochs=self.prototype_epochs if stage.kind == 'prototypes'
            else None, evaluate=stage.evaluate,
            # only when on, so fp32 manifests keep their signatures
            **(dict(amp=True) if self.amp else {})),
            sort_keys=True, default=str)
        return sha256_text(blob)

    # -- running ---------------------------------------------------------------
    def _stream(self, cmd: List[str], log_path: str, desc: str,
                env: Optional[dict] = None) -> None:
        """Run ``cmd``, teeing its output to ``log_path`` and a progress bar."""
        from tqdm import tqdm
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        child_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
        child_env['PYTHONPATH'] = ROOT + os.pathsep + child_env.get(
            'PYTHONPATH', '')
        bar = None if self.verbose else tqdm(desc=desc, total=None,
                                             dynamic_ncols=True, leave=False)
        with open(log_path, 'a') as log:
            log.write(f'$ {" ".join(cmd)}\n')
            log.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    cwd=os.getcwd(), env=child_env,
                                    preexec_fn=_die_with_parent)
            for line in proc.stdout:
                log.write(line)
                if self.verbose:
                    sys.stdout.write(line)
                elif bar is not None:
                    m = _ITER.search(line)
                    if m:
                        bar.total = int(m.group(2))
                        bar.n = int(m.group(1))
                        bar.refresh()
            code = proc.wait()
        if bar is not None:
            bar.close()
        if code != 0:
            with open(log_path) as f:
                tail = [l for l in f.read().splitlines() if l.strip()][-1:]
            last = tail[0].strip() if tail else ''
            raise PipelineError(
                f'stage {desc} failed (exit {code}): {last[:300]} '
                f'(full log: {log_path})')

    def _train_cmd(self, stage: Stage, options: dict, resume: bool,
                   gpus: int, port: int) -> List[str]:
        script = osp.join(ROOT, 'tools', 'train.py')
        args = [stage.config, '--work-dir', self.stage_dir(stage)]
        if resume:
            args.append('--resume')
        if self.amp:
            args.append('--amp')
        if self.channels_last:
            args.append('--channels-last')
        if options:
            args += ['--cfg-options'] + [f'{k}={v}'
                                         for k, v in options.items()]
        if self.launcher == 'slurm':
            return ['srun', f'--ntasks={max(gpus, 1)}',
                    f'--ntasks-per-node={min(max(gpus, 1), 8)}',
                    self.python, '-u', script] + args + ['--launcher',
                                                         'slurm']
        if gpus > 1 or self.launcher == 'pytorch':
            return [self.python, '-m', 'torch.distributed.run',
                    f'--nproc_per_node={max(gpus, 1)}',
                    f'--master_port={port}', script] + args + [
                        '--launcher', 'pytorch']
        return [self.python, script] + args

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
                   gpus: int, port: int, env: Optional[dict]) -> dict:
        log = osp.join(self.stage_dir(stage), 'stage.log')
        self._stream(self._train_cmd(stage, options, resume, gpus, port),
                     log, stage.name, env)
        ckpt = self._last_checkpoint(stage)
        outputs = dict(checkpoint=dict(path=ckpt, sha256=sha256_file(ckpt)))
        metrics = None
        if stage.evaluate:
            out = osp.join(self.stage_dir(stage), 'metrics.json')
            cmd = [self.python, osp.join(ROOT, 'tools', 'test.py'),
                   stage.config, ckpt, '--metrics-out', out, '--work-dir',
                   osp.join(self.stage_dir(stage), 'test')] + (
                       ['--amp'] if self.amp else []) + (
                       ['--channels-last'] if self.channels_last else [])
            self._stream(cmd, log, f'{stage.name} (test)', env)
            with open(out) as f:
                metrics = json.load(f)
            outputs['metrics'] = dict(path=out, sha256=sha256_file(out))
        return dict(outputs=outputs, metrics=metrics)

    def _run_prototypes(self, stage: Stage, inputs: dict,
                        env: Optional[dict]) -> dict:
        out = osp.join(self.stage_dir(stage), 'prototypes.pth')
        cmd = [self.python,
               osp.join(ROOT, 'tools', 'cal_prototypes', 'cal_prototype.py'),
               stage.config, inputs['checkpoint']['path'], '--epochs',
               str(self.prototype_epochs), '--out', out, '--no-progress'] + (
                   ['--amp'] if self.amp else [])
        self._stream(cmd, osp.join(self.stage_dir(stage), 'stage.log'),
                     stage.name, env)
        return dict(outputs=dict(
            prototypes=dict(path=out, sha256=sha256_file(out))), metrics=None)

    def _outputs_intact(self, record: dict) -> bool:
        outs = record.get('outputs') or {}
        if not outs:
            return False
        for out in outs.values():
            path = out.get('path')
            if not path or not osp.isfile(path):
                return False
            if out.get('sha256') and sha256_file(path) != out['sha256']:
                return False
        return True

    def decide(self, stage: Stage, signature: str, force: bool):
        """``(action, reason)``: skip, resume or fresh."""
        rec = self.manifest.stages.get(stage.name, {})
        status = rec.get('status', 'pending')
        if force:
            return 'fresh', 'rerun requested (--from/--only)'
        if status == 'done':
            if rec.get('signature') != signature:
                return 'fresh', 'its config or inputs changed since it ran'
            if not self._outputs_intact(rec):
                return 'fresh', 'its outputs are missing or modified'
            return 'skip', 'up to date'
        if status in ('running', 'failed') and \
                rec.get('signature') == signature:
            if stage.kind == 'train':
                return 'resume', f'interrupted ({status}); resuming'
            return 'fresh', f'interrupted ({status}); recomputing'
        if status in ('running', 'failed'):
            return 'fresh', 'interrupted, and its config or inputs changed'
        return 'fresh', 'not run yet'

    def _set_aside(self, stage: Stage) -> None:
        wd = self.stage_dir(stage)
        if osp.isdir(wd) and os.listdir(wd):
            aside = f'{wd}.old-{time.strftime("%Y%m%d_%H%M%S")}'
            os.replace(wd, aside)
            print(f'  previous outputs of {stage.name} kept in {aside}')

    def run_stage(self, stage: Stage, force: bool = False, gpus: int = None,
                  port: int = None, env: Optional[dict] = None) -> str:
        inputs = self.resolve_inputs(stage)
        options = self.options(stage, inputs)
        signature = self.signature(stage, inputs, options)
        with self._lock:
            action, reason = self.decide(stage, signature, force)
        if action == 'skip':
            print(f'[{stage.name}] {reason}, skipped')
            return action
        print(f'[{stage.name}] {reason}')
        _remove_stale_tmp(self.stage_dir(stage), recursive=True)
        if action == 'resume':
            _repair_last_checkpoint(self.stage_dir(stage))
        if action == 'fresh':
            self._set_aside(stage)
        started = time.time()
        with self._lock:
            self.manifest.update(
                stage.name, status='running', kind=stage.kind,
                label=stage.label, config=stage.config, signature=signature,
                inputs=inputs, options=options, reason=reason,
                started=time.strftime('%Y-%m-%d %H:%M:%S'), outputs={},
                metrics=None)
        try:
            if stage.kind == 'train':
                result = self._run_train(
                    stage, options, action == 'resume',
                    self.gpus if gpus is None else gpus,
                    port or self._port, env)
            else:
                result = self._run_prototypes(stage, inputs, env)
        except BaseException as exc:
            with self._lock:
                self.manifest.update(stage.name, status='failed',
                                     error=str(exc)[:500])
            raise
        seconds = round(time.time() - started, 1)
        with self._lock:
            self.manifest.update(stage.name, status='done', seconds=seconds,
                                 error=None, **result)
        miou = (result.get('metrics') or {}).get('mIoU')
        extra = f', target mIoU {miou:.2f}' if miou is not None else ''
        print(f'[{stage.name}] done in {seconds:.0f} s{extra}')
        return action

    def _selected(self, start: Optional[str], only: Optional[str]):
        names = [s.name for s in self.stages]
        if only:
            self.stage(only)
            return [self.stage(only)], {only}
        if start:
            self.stage(start)
            i = names.index(start)
            return self.stages, set(names[i:])
        return self.stages, set()

    def run(self, start: Optional[str] = None,
            only: Optional[str] = None) -> dict:
        stages, forced = self._selected(start, only)
        os.makedirs(self.work_dir, exist_ok=True)
        _remove_stale_tmp(self.work_dir, recursive=False)
        self.manifest.data['pipeline'] = dict(
            config=osp.abspath(self.config_path), work_dir=self.work_dir,
            stages=[s.name for s in self.stages])
        self.manifest.save()
        i = 0
        while i < len(stages):
            stage = stages[i]
            pair = self._parallel_pair(stages, i)
            if pair:
                self._run_pair(pair, forced)
                i += 2
                continue
            self.run_stage(stage, force=stage.name in forced)
            i += 1
        return self.write_summary()

    def _parallel_pair(self, stages, i):
        if not (self.parallel_paths and self.gpus >= 2 and
                self.launcher != 'slurm' and i + 1 < len(stages)):
            return None
        a, b = stages[i], stages[i + 1]
        if a.kind == b.kind == 'train' and a.name.endswith('_st_cu') and \
                b.name.endswith('_st_ca'):
            return a, b
        return None

    def _run_pair(self, pair, forced) -> None:
        half = self.gpus // 2
        visible = os.environ.get('CUDA_VISIBLE_DEVICES')
        devices = visible.split(',') if visible else [
            str(i) for i in range(self.gpus)]
        jobs = []
        with ThreadPoolExecutor(2) as pool:
            for k, stage in enumerate(pair):
                env = dict(CUDA_VISIBLE_DEVICES=','.join(
                    devices[k * half:(k + 1) * half]))
                jobs.append(pool.submit(
                    self.run_stage, stage, stage.name in forced, half,
                    self._port + 1 + k, env))
            for job in jobs:
                job.result()

    # -- reporting -------------------------------------------------------------
    def plan_lines(self) -> List[str]:
        lines = [f'pipeline {self.config_path} -> {self.work_dir}']
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
        rows = []
        for stage in self.stages:
            rec = self.manifest.stages.get(stage.name, {})
            if stage.kind != 'train':
                continue
            metrics = rec.get('metrics') or {}
            rows.append(dict(
                stage=stage.name, label=stage.label,
                status=rec.get('status', 'pending'),
                mIoU=metrics.get('mIoU'),
                metrics={k: v for k, v in metrics.items()
                         if k != 'per_class' and isinstance(v, (int, float))},
                seconds=rec.get('seconds'),
                checkpoint=(rec.get('outputs') or {}).get(
                    'checkpoint', {}).get('path')))
        summary = dict(config=osp.abspath(self.config_path), stages=rows)
        write_json_atomic(osp.join(self.work_dir, 'summary.json'), summary)
        print(format_summary(rows))
        if any(r['mIoU'] is not None for r in rows):
            plot_summary(rows, osp.join(self.work_dir, 'summary.png'))
        return summary


def format_summary(rows: List[dict]) -> str:
    width = max([len(r['label']) for r in rows] + [5])
    lines = [f'{"stage":<{width}}  target mIoU  time (s)',
             '-' * (width + 23)]
    for r in rows:
        miou = '-' if r['mIoU'] is None else f'{r["mIoU"]:.2f}'
        secs = '-' if r.get('seconds') is None else f'{r["seconds"]:.0f}'
        lines.append(f'{r["label"]:<{width}}  {miou:>11}  {secs:>8}')
    return '\n'.join(lines)


def plot_summary(rows: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r['mIoU'] is not None]
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.2), dpi=100)
    bars = ax.bar(range(len(rows)), [r['mIoU'] for r in rows],
                  color=['#999999' if 'source' in r['label'] else '#3b75af'
                         for r in rows])
    for bar, r in zip(bars, rows):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                f'{r["mIoU"]:.1f}', ha='center', va='bottom', fontsize=8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r['label'] for r in rows], rotation=20, ha='right',
                       fontsize=8)
    ax.set_ylabel('target mIoU (%)')
    ax.set_title('DDB, stage by stage')
    fig.tight_layout()
    tmp = osp.join(osp.dirname(path),
                   f'.tmp-{os.getpid()}-{osp.basename(path)}')
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
