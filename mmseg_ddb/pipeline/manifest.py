"""The pipeline's manifest: one JSON file recording every stage's status,
inputs, outputs (with checksums) and metrics. Written atomically."""
import hashlib
import json
import os.path as osp
import time
from typing import Dict, Optional

from ..utils.fileio import write_json_atomic


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Manifest:
    """``manifest.json`` in the pipeline's work directory.

    ``stages[name]`` holds ``status`` (pending / running / done / failed),
    ``signature`` (hash of the resolved config and input checksums),
    ``inputs`` and ``outputs`` (``{key: {path, sha256}}``), ``metrics``,
    ``reason`` (why it was (re)run) and timings.
    """

    def __init__(self, path: str):
        self.path = path
        self.data = dict(version=1, stages={})
        if osp.isfile(path):
            with open(path) as f:
                self.data = json.load(f)
            self.data.setdefault('stages', {})

    @property
    def stages(self) -> Dict[str, dict]:
        return self.data['stages']

    def stage(self, name: str) -> dict:
        return self.stages.setdefault(name, dict(status='pending'))

    def save(self) -> None:
        self.data['updated'] = time.strftime('%Y-%m-%d %H:%M:%S')
        write_json_atomic(self.path, self.data)

    def update(self, name: str, **fields) -> None:
        self.stage(name).update(fields)
        self.save()

    def output(self, name: str, key: str) -> Optional[str]:
        return self.stages.get(name, {}).get('outputs', {}).get(
            key, {}).get('path')
