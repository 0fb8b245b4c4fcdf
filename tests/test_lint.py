"""The tree is clean under the project's lint rules (``[tool.ruff]`` in
pyproject.toml: one line width, import order, no unused or undefined
names), and the tools are installed as console scripts."""
import os.path as osp
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

from conftest import REPO

SCRIPTS = {'ddb-train': 'train', 'ddb-test': 'test', 'ddb-infer': 'infer',
           'ddb-prototypes': 'cal_prototype', 'ddb-pipeline': 'pipeline',
           'ddb-plot-run': 'plot_run', 'ddb-benchmark': 'benchmark',
           'ddb-gpu-check': 'gpu_check', 'ddb-publish': 'publish',
           'ddb-export': 'export_onnx'}


def test_ruff_finds_nothing():
    ruff = shutil.which('ruff', path=osp.dirname(sys.executable)) or \
        shutil.which('ruff')
    assert ruff, 'ruff is a test extra: pip install -e ".[test]"'
    res = subprocess.run([ruff, 'check', '--no-cache', REPO],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


def test_console_scripts_run_the_tools(tmp_path):
    """``ddb-*`` point at the same ``main`` as ``python tools/*.py``, and one
    runs from another folder (no sys.path edits)."""
    found = {e.name: e for e in entry_points(group='console_scripts')}
    for script, module in SCRIPTS.items():
        assert found[script].value == f'mmseg_ddb.tools.{module}:main'
        assert shutil.which(script, path=osp.dirname(sys.executable)), \
            f'{script} not installed next to {sys.executable}'
    from mmseg_ddb.tools import train
    assert found['ddb-train'].load() is train.main
    exe = shutil.which('ddb-train', path=osp.dirname(sys.executable))
    res = subprocess.run([exe, '--help'], capture_output=True, text=True,
                         cwd=str(tmp_path), timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('usage: ddb-train')
