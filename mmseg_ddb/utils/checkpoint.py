"""Loading weights a user hands us: safely, and with errors that name keys.

Every weight file (ImageNet inits, released DDB weights, ``--load-from``,
teacher checkpoints) is read with ``torch.load(weights_only=True)``. Our own
checkpoints load that way too: :mod:`mmseg_ddb.compat` allow-lists the few
plain-data types mmengine stores in them (its ``HistoryBuffer`` and numpy
arrays).
"""
import os.path as osp
import pickle
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from ..errors import CheckpointError, flat

#: Prefixes under which the original's UDA checkpoints store the model that is
#: evaluated: ``model.`` (ST student) and ``stu_model.`` (CKD student).
STUDENT_PREFIXES = ('model.', 'stu_model.')


def load_weights_file(path: str, trust: bool = False) -> dict:
    """``torch.load`` a checkpoint on the CPU, refusing arbitrary pickles.

    Args:
        path (str): The file.
        trust (bool): Allow arbitrary unpickling (``--trust-checkpoint``).
            Only for files from a source you trust.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path} not found')
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(
            f'cannot read checkpoint {path}: {exc.strerror or exc}; check '
            'that the file is readable by this user') from exc
    # torch.save writes a zip archive (or, before torch 1.6, a pickle)
    if not (head.startswith(b'PK') or head.startswith(b'\x80')):
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint (it ' +
            ('is empty' if not head else f'starts with {head!r}') +
            '); expected a .pth file written by torch.save')
    try:
        return torch.load(path, map_location='cpu', weights_only=not trust)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        raise CheckpointError(
            f'{path} needs arbitrary unpickling to load ({first[:200]}); '
            'refusing. If you trust the file, pass --trust-checkpoint.'
        ) from exc
    except Exception as exc:  # truncated zip, bad records, ...
        reason = flat(exc).split('. ')[0][:200]
        raise CheckpointError(
            f'cannot read checkpoint {path}: {type(exc).__name__}: {reason}.'
            ' The file may be truncated or not a PyTorch checkpoint.') from exc


def state_dict_of(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The state dict inside a checkpoint (``state_dict``/``model`` or itself),
    without a DDP ``module.`` prefix."""
    sd = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        raise CheckpointError('checkpoint holds no state dict')
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def select_prefix(state_dict: Dict[str, torch.Tensor],
                  prefixes: Sequence[str] = STUDENT_PREFIXES
                  ) -> Dict[str, torch.Tensor]:
    """Keep the keys under the first prefix present, with the prefix removed.

    With none of the prefixes present the state dict is returned unchanged,
    so plain segmentor checkpoints load too.
    """
    for prefix in prefixes:
        sub = {k[len(prefix):]: v for k, v in state_dict.items()
               if k.startswith(prefix)}
        if sub:
            return sub
    return state_dict


def check_state_dict(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                     path: str) -> None:
    """Raise :class:`CheckpointError` naming every key that does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f'{k} (file {tuple(v.shape)} vs model {tuple(own[k].shape)})'
        for k, v in state_dict.items()
        if k in own and hasattr(v, 'shape') and v.shape != own[k].shape
    ]
    problems = []
    for what, keys in (('missing keys', missing),
                       ('unexpected keys', unexpected),
                       ('shape mismatches', mismatched)):
        if keys:
            shown = ', '.join(keys[:5]) + (', ...' if len(keys) > 5 else '')
            problems.append(f'{len(keys)} {what} [{shown}]')
    if problems:
        raise CheckpointError(
            f'checkpoint {path} does not fit the model: ' + '; '.join(problems)
            + '. Is it for another config (backbone, head, class count)?')


def load_model_weights(model: nn.Module, path: str,
                       prefixes: Sequence[str] = STUDENT_PREFIXES,
                       trust: bool = False) -> Optional[str]:
    """Load the evaluated model of any DDB / mmseg checkpoint into ``model``.

    Picks the student (``model.`` or ``stu_model.``) of UDA checkpoints, ours
    or the original's, and plain segmentor checkpoints as they are. Strict:
    every key must fit.

    Returns:
        str | None: the prefix that was used.
    """
    sd = state_dict_of(load_weights_file(path, trust=trust))
    chosen = next((p for p in prefixes if any(k.startswith(p) for k in sd)),
                  None)
    sd = select_prefix(sd, prefixes)
    check_state_dict(model, sd, path)
    model.load_state_dict(sd, strict=True)
    return chosen


#: Where each kind of checkpoint keeps its models, ours and the original's:
#: ST ``model.`` (student) + ``ema_model.`` (EMA teacher, + the original's
#: ``imnet_model.``); CKD ``stu_model.`` + its teachers (ours
#: ``teachers.<i>.``, the original's ``cu_model.`` / ``ca_model.``).
EMA_TEACHER_PREFIX = 'ema_model.'
#: first key parts of a plain segmentor (mmseg's EncoderDecoder)
SEGMENTOR_PARTS = ('backbone', 'decode_head', 'auxiliary_head', 'neck',
                   'data_preprocessor')


def checkpoint_layout(state_dict: Dict[str, torch.Tensor], path: str) -> str:
    """``'plain'``, ``'st'`` or ``'ckd'``: which models ``state_dict`` holds.

    Raises:
        CheckpointError: none of these layouts; the message names the file
            and the top-level key parts found.
    """
    parts = sorted({k.split('.', 1)[0] for k in state_dict})
    if 'stu_model' in parts:
        return 'ckd'
    if 'model' in parts:
        return 'st'
    if parts and set(parts) <= set(SEGMENTOR_PARTS) and 'backbone' in parts:
        return 'plain'
    shown = ', '.join(f'{p}.*' for p in parts[:6]) + (
        ', ...' if len(parts) > 6 else '') if parts else 'no keys'
    raise CheckpointError(
        f'{path}: unknown checkpoint layout (top-level keys {shown}); '
        'expected a plain segmentor (backbone.*, decode_head.*), an ST '
        'checkpoint (model.*, ema_model.*) or a CKD one (stu_model.*)')


def deployed_weights(state_dict: Dict[str, torch.Tensor], path: str,
                     teacher: bool = False) -> Dict[str, torch.Tensor]:
    """The weights of the model to deploy, in the plain segmentor's layout:
    the student (``model.`` / ``stu_model.``), or with ``teacher`` the EMA
    teacher of an ST checkpoint (``ema_model.``); a plain checkpoint as it
    is."""
    layout = checkpoint_layout(state_dict, path)
    if teacher:
        if layout != 'st':
            raise CheckpointError(
                f'{path}: --teacher takes the EMA teacher of an ST checkpoint'
                f', but this is a {layout} checkpoint (no ema_model.*); a CKD '
                'model\'s teachers are the ST checkpoints it was distilled '
                'from: publish those with --teacher')
        return select_prefix(state_dict, (EMA_TEACHER_PREFIX, ))
    return select_prefix(state_dict, STUDENT_PREFIXES)
