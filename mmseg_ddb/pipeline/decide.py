"""Deciding what to run: a stage's signature (what its result depends on)
and, from its manifest record, whether to skip, resume or redo it."""
import json
import os.path as osp
from typing import Dict, Optional, Tuple

from ..errors import ConfigError
from ..utils import check_cfg_options, load_config
from .manifest import sha256_file, sha256_text
from .plan import Stage


def resolved_config(stage: Stage, options: Dict[str, str]):
    """The stage's config with its wired ``--cfg-options`` merged in."""
    cfg = load_config(stage.config)
    if options and stage.kind == 'train':
        cfg.merge_from_dict(options)
    return cfg


def check_wiring(stages) -> None:
    """Check, before any stage runs, that every config key the pipeline
    wires into a training stage exists in its config (the check
    ``tools/train.py`` would make only when the stage starts).

    Raises:
        ConfigError: Names the stage, its config and the key.
    """
    for stage in stages:
        if stage.kind != 'train' or not stage.wiring:
            continue
        try:
            check_cfg_options(load_config(stage.config),
                              {key: '<wired>' for key in stage.wiring})
        except ConfigError as exc:
            raise ConfigError(
                f'{stage.config}: the pipeline sets {", ".join(stage.wiring)}'
                f' of stage {stage.name}, but {exc} (an init checkpoint '
                "needs an init_cfg=dict(type='Pretrained', checkpoint=...) "
                'at that key in the config)') from exc


def stage_signature(stage: Stage, inputs: dict, options: Dict[str, str],
                    prototype_epochs: int, amp: bool = False,
                    seed: Optional[int] = None) -> str:
    """Hash of everything a stage's result depends on: its resolved config,
    its inputs' checksums, the prototype epochs, ``amp`` and, for training
    stages, the seed. ``amp`` and the seed enter only when set, so manifests
    written without them keep their signatures."""
    cfg = resolved_config(stage, options)
    extra = {}
    if amp:
        extra['amp'] = True
    if seed is not None and stage.kind == 'train':
        extra['seed'] = seed
    blob = json.dumps(dict(
        kind=stage.kind, config=cfg.to_dict(),
        inputs={k: v['sha256'] for k, v in inputs.items()},
        epochs=prototype_epochs if stage.kind == 'prototypes' else None,
        evaluate=stage.evaluate, **extra), sort_keys=True, default=str)
    return sha256_text(blob)


def outputs_intact(record: dict) -> bool:
    """Whether every output a manifest record lists exists with its
    recorded checksum."""
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


def decide(record: dict, kind: str, signature: str,
           force: bool) -> Tuple[str, str]:
    """What to do with a stage.

    Args:
        record (dict): The stage's manifest record (``{}`` if none).
        kind (str): ``'train'`` (an interrupted run resumes) or
            ``'prototypes'`` (recomputed).
        signature (str): The stage's signature now.
        force (bool): Rerun requested (``--from`` / ``--only``).

    Returns:
        tuple[str, str]: ``(action, reason)``, action ``'skip'``,
        ``'resume'`` or ``'fresh'``.
    """
    status = record.get('status', 'pending')
    if force:
        return 'fresh', 'rerun requested (--from/--only)'
    if status == 'done':
        if record.get('signature') != signature:
            return 'fresh', 'its config or inputs changed since it ran'
        if not outputs_intact(record):
            return 'fresh', 'its outputs are missing or modified'
        return 'skip', 'up to date'
    if status in ('running', 'failed') and \
            record.get('signature') == signature:
        if kind == 'train':
            return 'resume', f'interrupted ({status}); resuming'
        return 'fresh', f'interrupted ({status}); recomputing'
    if status in ('running', 'failed'):
        return 'fresh', 'interrupted, and its config or inputs changed'
    return 'fresh', 'not run yet'
