"""The stage plan of a DDB pipeline config (DESIGN.md section 4).

A pipeline config::

    pipeline = dict(
        task='gtav2cityscapes',
        init=None,          # or dict(config=..., key=..., label=...,
                            # evaluate=..., shared=...): trained first; its
                            # checkpoint initialises every fresh model
        reference=None,     # or dict(config=...): a source-only run, reported
        oracle=None,        # or dict(config=...): the same network trained
                            # on the target labels, reported (upper bound)
        rounds=[dict(st=dict(cu=CFG, ca=CFG), ckd=CFG),   # round 1
                dict(st=dict(cu=CFG, ca=CFG), ckd=CFG)],  # round 2
        prototype_epochs=4,
        evaluate=True)      # test every trained stage on the target val

becomes the stages ``init``/``reference``/``oracle``, then per round r:
``r{r}_st_cu``, ``r{r}_st_ca``, ``r{r}_proto_cu``, ``r{r}_proto_ca``,
``r{r}_ckd``. Each stage's inputs are outputs of earlier stages, wired into
its config through ``--cfg-options`` (no hand-placed files):

* round r > 1 ST: ``uda.distilled_model_path`` = round r-1 CKD checkpoint;
* CKD: ``uda.teachers.<i>.checkpoint`` / ``.prototypes`` = the same round's
  ST checkpoints and prototype files, matched by teacher name;
* with ``init``: the config key ``init.key`` (default
  ``model.init_cfg.checkpoint``; ``model.backbone.init_cfg.checkpoint`` for
  a backbone-only init, as ImageNet weights are) of every later training
  stage = the init checkpoint. ``init.evaluate=False`` skips testing it (a
  pretraining on other labels); ``init.label`` names it in the summary.

``reference`` and ``oracle`` are reported only: no later stage reads their
outputs. The summary measures each stage by the share of the
reference -> oracle gap it closes.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import ConfigError
from ..utils.paths import repo_path

PATHS = ('cu', 'ca')


@dataclass
class Stage:
    """One step of the pipeline.

    Attributes:
        name: Unique stage name, e.g. ``r1_st_cu``.
        kind: ``'train'`` or ``'prototypes'``.
        config: The stage's config file (for prototypes: the ST config).
        label: Human-readable name for the summary table.
        inputs: ``{key: stage name}``: outputs of earlier stages it needs.
        wiring: ``{cfg-options key: input key}``.
        evaluate: Test the trained model on the target val.
        shared: Trained once and used by every seed of ``--seeds``, with no
            seed of its own (``init.shared``: a fixed init, as downloaded
            ImageNet weights are).
        overrides: ``{config key: value}`` set on the stage besides its
            wiring (an ablation's switch, see :mod:`.ablate`); part of its
            signature through the resolved config.
    """
    name: str
    kind: str
    config: str
    label: str
    inputs: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    wiring: Dict[str, str] = field(default_factory=dict)
    evaluate: bool = False
    shared: bool = False
    overrides: Dict[str, object] = field(default_factory=dict)




def _check_config(path, where: str) -> str:
    """The stage config's path: as written when it exists from the current
    folder (mmseg's convention), else in this repository, so the pipeline
    also runs from another folder."""
    if not isinstance(path, str) or not path.endswith('.py'):
        raise ConfigError(f'pipeline.{where}: expected a config file path, '
                          f'got {path!r}')
    if not osp.isfile(path) and not osp.isabs(path) and \
            osp.isfile(repo_path(path)):
        return repo_path(path)
    return path


#: the config key the init checkpoint is wired into unless ``init.key`` says
INIT_KEY = 'model.init_cfg.checkpoint'


def _init_wired(stage: Stage, init: Optional[str],
                key: str = INIT_KEY) -> Stage:
    """``stage`` initialised from the ``init`` stage's checkpoint (when the
    pipeline has one), through the config key ``key``."""
    if init:
        stage.inputs['init'] = (init, 'checkpoint')
        stage.wiring[key] = 'init'
    return stage


def _reported_stages(pipeline: dict, init: Optional[str], evaluate: bool,
                     oracle: bool, key: str = INIT_KEY) -> List[Stage]:
    """The ``reference`` and ``oracle`` stages the pipeline config names
    (``oracle=False`` drops the oracle)."""
    stages = []
    for name, label, wanted in (('reference', 'source-only reference', True),
                                ('oracle', 'oracle (target labels)', oracle)):
        if wanted and pipeline.get(name):
            cfg = _check_config(pipeline[name].get('config'),
                                f'{name}.config')
            stages.append(_init_wired(
                Stage(name, 'train', cfg, label, evaluate=evaluate), init,
                key))
    return stages


def build_plan(pipeline: dict, teacher_names=None,
               oracle: bool = True) -> List[Stage]:
    """Stages of a pipeline config, in execution order.

    Args:
        pipeline (dict): The ``pipeline`` dict of a pipeline config.
        teacher_names (callable, optional): ``config -> [name, ...]``: the
            teacher names of a CKD config in order (to wire
            ``uda.teachers.<i>``). Default: ``['cu', 'ca']``.
        oracle (bool): Include the ``oracle`` stage when the config names
            one (``False``: ``--no-oracle``).

    Returns:
        list[Stage]: ``init``, ``reference``, ``oracle`` (those the config
        names), then the rounds.
    """
    if not isinstance(pipeline, dict) or not pipeline.get('rounds'):
        raise ConfigError('the pipeline config needs pipeline = dict('
                          'rounds=[dict(st=dict(cu=..., ca=...), ckd=...)])')
    evaluate = bool(pipeline.get('evaluate', True))
    stages: List[Stage] = []
    init: Optional[str] = None
    key = INIT_KEY
    if pipeline.get('init'):
        spec = pipeline['init']
        cfg = _check_config(spec.get('config'), 'init.config')
        key = spec.get('key', INIT_KEY)
        if not isinstance(key, str) or not key.startswith('model.'):
            raise ConfigError(f'pipeline.init.key: expected a config key '
                              f'such as {INIT_KEY!r}, got {key!r}')
        stages.append(Stage(
            'init', 'train', cfg, spec.get('label', 'source-only (init)'),
            evaluate=evaluate and bool(spec.get('evaluate', True)),
            shared=bool(spec.get('shared', False))))
        init = 'init'
    stages += _reported_stages(pipeline, init, evaluate, oracle, key)
    previous_ckd: Optional[str] = None
    for r, rnd in enumerate(pipeline['rounds'], start=1):
        st = rnd.get('st') or {}
        if set(st) != set(PATHS):
            raise ConfigError(f'pipeline.rounds[{r - 1}].st must name both '
                              f'paths {PATHS}, got {sorted(st)}')
        for path in PATHS:
            cfg = _check_config(st[path], f'rounds[{r - 1}].st.{path}')
            stage = _init_wired(Stage(f'r{r}_st_{path}', 'train', cfg,
                                      f'R{r} ST-{path}', evaluate=evaluate),
                                init, key)
            if previous_ckd:
                stage.inputs['distilled'] = (previous_ckd, 'checkpoint')
                stage.wiring['uda.distilled_model_path'] = 'distilled'
            stages.append(stage)
        for path in PATHS:
            stages.append(Stage(
                f'r{r}_proto_{path}', 'prototypes', st[path],
                f'R{r} prototypes-{path}',
                inputs=dict(checkpoint=(f'r{r}_st_{path}', 'checkpoint'))))
        cfg = _check_config(rnd.get('ckd'), f'rounds[{r - 1}].ckd')
        stage = _init_wired(Stage(f'r{r}_ckd', 'train', cfg, f'R{r} CKD',
                                  evaluate=evaluate), init, key)
        names = teacher_names(cfg) if teacher_names else list(PATHS)
        for i, name in enumerate(names):
            if name not in PATHS:
                raise ConfigError(
                    f'{cfg}: uda.teachers.{i}.name={name!r}; the pipeline '
                    f'wires teachers named {PATHS}')
            stage.inputs[f'teacher_{name}'] = (f'r{r}_st_{name}',
                                               'checkpoint')
            stage.inputs[f'prototypes_{name}'] = (f'r{r}_proto_{name}',
                                                  'prototypes')
            stage.wiring[f'uda.teachers.{i}.checkpoint'] = f'teacher_{name}'
            stage.wiring[f'uda.teachers.{i}.prototypes'] = \
                f'prototypes_{name}'
        stages.append(stage)
        previous_ckd = stage.name
    return stages
