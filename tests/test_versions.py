"""The OpenMMLab stack that is installed is exactly the one pinned.

The pins live in one place, ``pyproject.toml``; this test reads them from there
(no second copy) and fails when

- a package that provides ``mmseg``, ``mmengine`` or ``mmcv`` is not pinned
  exactly (``==``),
- the installed distribution has another version (a silent upgrade or a
  hand-installed build),
- the imported module reports another version than its distribution, or more
  than one installed distribution ships the same module (two distributions
  writing the same files: which one you import then depends on install order),
- the README does not name the pinned versions.
"""
import importlib
import importlib.metadata as md
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# distribution name (as pip spells it, normalised) -> import name
PROVIDES = {
    'mmengine': 'mmengine',
    'mmengine-lite': 'mmengine',
    'onedl-mmengine': 'mmengine',
    'mmcv': 'mmcv',
    'mmcv-lite': 'mmcv',
    'onedl-mmcv': 'mmcv',
    'mmsegmentation': 'mmseg',
    'onedl-mmsegmentation': 'mmseg',
}
MODULES = ('mmseg', 'mmengine', 'mmcv')


def _normalise(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _load_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        tomllib = pytest.importorskip('tomli')
    with open(path, 'rb') as f:
        return tomllib.load(f)


def pinned():
    """``{import name: (distribution, version)}`` from pyproject.toml."""
    deps = _load_toml(osp.join(ROOT, 'pyproject.toml'))['project'][
        'dependencies']
    pins = {}
    for dep in deps:
        m = re.match(r'^\s*([A-Za-z0-9_.\-]+)\s*(.*)$', dep)
        dist, spec = _normalise(m.group(1)), m.group(2).strip()
        module = PROVIDES.get(dist)
        if module is None:
            continue
        assert module not in pins, f'two pyproject pins provide {module}'
        pin = re.fullmatch(r'==\s*([0-9][0-9A-Za-z.+\-]*)', spec)
        assert pin, (f'{dist} must be pinned exactly (==) in pyproject.toml, '
                     f'got {spec!r}')
        pins[module] = (dist, pin.group(1))
    return pins


def test_every_openmmlab_package_is_pinned():
    assert sorted(pinned()) == sorted(MODULES)


@pytest.mark.parametrize('module', MODULES)
def test_installed_versions_are_the_pins(module):
    dist, version = pinned()[module]
    try:
        installed = md.version(dist)
    except md.PackageNotFoundError:
        pytest.fail(f'{dist} (pinned {version}) is not installed; '
                    'run pip install -e ".[test]"')
    assert installed == version, (
        f'{dist} {installed} is installed but pyproject.toml pins {version}; '
        'reinstall with pip install -e ".[test]" or change the pin (and the '
        'README) deliberately')
    mod = importlib.import_module(module)
    assert mod.__version__ == version, (
        f'import {module} gives version {mod.__version__} from '
        f'{mod.__file__}, but {dist} {version} is the installed distribution:'
        ' another package has overwritten its files')


@pytest.mark.parametrize('module', MODULES)
def test_one_distribution_per_module(module):
    dist, _ = pinned()[module]
    providers = sorted({_normalise(d) for d in
                        md.packages_distributions().get(module, [])})
    assert providers == [dist], (
        f'{module} is shipped by {providers}: more than one installed '
        f'distribution writes its files, so which one is imported depends on '
        f'the install order; only {dist} should be installed')


def test_readme_names_the_pins():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    for dist, version in pinned().values():
        assert f'{dist}=={version}' in readme, (
            f'README.md must name the pinned {dist}=={version}')
