"""A cache of the pipeline's shared stages across work dirs.

The shared stages (``init.shared``: the synthetic demo's generic
pretraining, which stands in for downloaded ImageNet weights) do not depend
on the work dir, the seed or any other stage. A second pipeline in a new work
dir (another ``--work-dir``, another shift's configs with the same
pretraining) would train them again to the same weights; instead, when a
shared stage has trained, its outputs are stored under

    $DDB_STAGE_CACHE/<key>/        (default ~/.cache/mmseg_ddb/stages)

and a later fresh run of a stage with the same key copies them into its
stage dir instead of training. The key hashes the stage's signature (its
resolved config, inputs and options, as the manifest records it), the files
under every ``data_root`` its config names (relative path, size and
modification time of each; a folder that does not exist yet counts as
missing, so the run that generates the data trains) and the platform
(torch version, the CPU's vector capability, the GPUs' names): the demo's
numbers depend on the CPU's float kernels, so a cache shared between
machines never hands one machine's weights to another.

``DDB_STAGE_CACHE=0`` turns the cache off. An entry is written to a
temporary folder and renamed into place, its files are checked against
their recorded checksums when read (a damaged entry is ignored and the stage
trains), and restored files are copied (never linked), so deleting the cache
loses nothing a work dir holds.
"""
import json
import os
import os.path as osp
import platform
import shutil
import time
from typing import Iterator, List, Optional

from ..utils.fileio import (
    TMP_PREFIX,
    atomic_save,
    atomic_write,
    remove_stale_tmp,
    write_json_atomic,
)
from .manifest import sha256_file, sha256_text

CACHE_ENV = 'DDB_STAGE_CACHE'
RECORD = 'record.json'


def cache_root() -> Optional[str]:
    """The cache folder, or None when ``DDB_STAGE_CACHE`` is ``0`` (or
    empty)."""
    value = os.environ.get(CACHE_ENV)
    if value is None:
        base = os.environ.get('XDG_CACHE_HOME') or osp.join(
            osp.expanduser('~'), '.cache')
        return osp.join(base, 'mmseg_ddb', 'stages')
    if value.strip() in ('', '0'):
        return None
    return osp.abspath(osp.expanduser(value))


def platform_key() -> dict:
    """What the float results of a training run depend on besides its
    config and data: torch's version, the CPU's vector capability (AVX2,
    AVX-512, ...), the machine and the visible GPUs' names."""
    import torch
    try:
        cpu = torch.backends.cpu.get_cpu_capability()
    except Exception:  # older torch: no query
        cpu = 'unknown'
    gpus: List[str] = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i)
                for i in range(torch.cuda.device_count())]
    return dict(torch=torch.__version__, cpu=cpu, machine=platform.machine(),
                gpus=gpus)


def data_roots(cfg) -> List[str]:
    """Every ``data_root`` string in the config, once, in the order met."""
    found: List[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == 'data_root' and isinstance(value, str):
                    if value not in found:
                        found.append(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg)
    return found


def _files(root: str) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not name.startswith(TMP_PREFIX) and not name.endswith('.lock'):
                yield osp.join(folder, name)


def data_fingerprint(roots: List[str]) -> str:
    """A hash of the files under ``roots`` (relative path, size and
    modification time); a missing root hashes as missing."""
    lines = []
    for root in roots:
        if not osp.isdir(root):
            lines.append(f'{root}\tmissing')
            continue
        lines.append(f'{root}\tfolder')
        for path in _files(root):
            st = os.stat(path)
            lines.append(f'{osp.relpath(path, root)}\t{st.st_size}\t'
                         f'{st.st_mtime_ns}')
    return sha256_text('\n'.join(lines))


def cache_key(signature: str, cfg) -> str:
    """The key of a stage: its signature, its data and the platform."""
    return sha256_text(json.dumps(dict(
        signature=signature, data=data_fingerprint(data_roots(cfg)),
        platform=platform_key()), sort_keys=True))


def _entry(key: str) -> Optional[str]:
    root = cache_root()
    return None if root is None else osp.join(root, key)


def lookup(key: str) -> Optional[dict]:
    """The cached entry's record (``outputs``: ``{name: dict(file, sha256)}``
    relative to the entry, ``metrics``, ``pseudo_labels``, ``seconds``) with
    ``folder`` added, or None when absent or damaged (a file missing or not
    matching its checksum)."""
    folder = _entry(key)
    if folder is None or not osp.isfile(osp.join(folder, RECORD)):
        return None
    try:
        with open(osp.join(folder, RECORD)) as f:
            record = json.load(f)
        for out in record['outputs'].values():
            path = osp.join(folder, out['file'])
            if not osp.isfile(path) or sha256_file(path) != out['sha256']:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(record, folder=folder)


def restore(entry: dict, stage_dir: str) -> dict:
    """Copy the entry's outputs into ``stage_dir`` (each through a temporary
    file) and return the manifest fields of the stage: ``outputs`` with the
    copies' paths and checksums, ``metrics`` and ``pseudo_labels``. A
    checkpoint also gets the ``last_checkpoint`` marker a training run
    leaves."""
    os.makedirs(stage_dir, exist_ok=True)
    outputs = {}
    for name, out in entry['outputs'].items():
        dst = osp.join(stage_dir, out['file'])
        atomic_save(dst, lambda tmp, src=osp.join(entry['folder'], out[
            'file']): shutil.copyfile(src, tmp))
        outputs[name] = dict(path=dst, sha256=out['sha256'])
        if name == 'checkpoint':
            atomic_write(osp.join(stage_dir, 'last_checkpoint'), dst,
                         mode='w')
    return dict(outputs=outputs, metrics=entry.get('metrics'),
                pseudo_labels=entry.get('pseudo_labels'))


def store(key: str, result: dict, seconds: float, stage: str) -> \
        Optional[str]:
    """Store a finished stage's ``result`` (its manifest fields) as the
    entry ``key``: copied to a temporary folder, which is renamed into
    place. Returns the entry's folder, or None when the cache is off, the
    entry exists already or the cache folder cannot be written (a cache
    never fails a run)."""
    folder = _entry(key)
    if folder is None or osp.isdir(folder):
        return None
    root = osp.dirname(folder)
    tmp = osp.join(root, f'{TMP_PREFIX}{os.getpid()}-{key}')
    try:
        remove_stale_tmp(root, folders=True)  # of a killed store
        os.makedirs(tmp, exist_ok=True)
        outputs = {}
        for name, out in result['outputs'].items():
            file = osp.basename(out['path'])
            shutil.copyfile(out['path'], osp.join(tmp, file))
            outputs[name] = dict(file=file, sha256=out['sha256'])
        write_json_atomic(osp.join(tmp, RECORD), dict(
            stage=stage, outputs=outputs, metrics=result.get('metrics'),
            pseudo_labels=result.get('pseudo_labels'), seconds=seconds,
            created=time.strftime('%Y-%m-%d %H:%M:%S'),
            platform=platform_key()))
        os.rename(tmp, folder)
        return folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
