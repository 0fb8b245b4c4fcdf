#!/usr/bin/env bash
# Download, on a machine with internet, the wheels of every dependency that
# the project's GPU machine lacks, for its Python (3.12, manylinux x86_64),
# pure-Python ones included, so that the GPU check runs there offline:
#   bash tools/gpu_wheels.sh [DEST]                 (default: .whl, git-ignored)
#   (there) bash tools/gpu_check.sh --wheels .whl
# The GPU machine has torch (CUDA build), numpy, opencv-python-headless,
# matplotlib, tensorboard, onnx, onnxruntime, pytest and tqdm (PRESENT below,
# with what they bring); everything else pyproject.toml needs is pinned in
# WHEELS to the version CI tests with. After the download every wheel's
# Requires-Dist (without extras, markers evaluated for that Python on Linux)
# is checked to be in WHEELS, PRESENT or EXCLUDED; the script fails
# otherwise, naming what is missing.
# Environment: PY_VERSION (3.12), PYTHON (python3: the pip that downloads).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/.whl}
PY_VERSION=${PY_VERSION:-3.12}
PYTHON=${PYTHON:-python3}

WHEELS=(
    # the OpenMMLab stack (pinned in pyproject.toml)
    mmengine==0.10.7
    mmcv-lite==2.1.0
    mmsegmentation==1.2.2
    # the rest of pyproject's dependencies the GPU machine lacks
    ftfy==6.3.1
    regex==2026.11.19
    cityscapesscripts==2.3.0
    kornia==0.9.0
    # what those require in turn
    addict==2.4.0
    pyyaml==6.0.4
    rich==15.0.0
    markdown-it-py==4.3.0
    mdurl==0.1.2
    termcolor==3.3.0
    yapf==0.43.0
    platformdirs==4.14.9
    prettytable==3.19.0
    wcwidth==0.9.4
    scipy==1.17.1
    kornia-rs==0.2.0
    appdirs==1.4.4
    pyquaternion==0.9.9
    coloredlogs==15.0.1
    humanfriendly==10.0
    # the test extra (tests/ import hypothesis)
    hypothesis==6.170.17
    sortedcontainers==2.4.0
)
# on the GPU machine already, with what they require
# (pygments: pytest >= 8.4 requires it; rich, which wants it too, imports it
# only to highlight code)
PRESENT="torch numpy opencv-python opencv-python-headless matplotlib contourpy cycler
fonttools kiwisolver pyparsing python-dateutil six pillow packaging tensorboard onnx
onnxruntime protobuf pytest pygments tqdm"
# required by a wheel above but never imported by the project: typing is in
# the standard library (the PyPI backport would shadow it and break
# Python 3.12), requests serves only cityscapesscripts' downloader
EXCLUDED="typing requests"

mkdir -p "$DEST"
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST" "${WHEELS[@]}"

"$PYTHON" - "$DEST" "$PY_VERSION" "$PRESENT" "$EXCLUDED" "${WHEELS[@]}" <<'EOF'
"""Every Requires-Dist of the downloaded wheels is covered; print the list
and the total size."""
import glob, os, re, sys, zipfile
from email.parser import Parser
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

dest, py_version, present, excluded, pins = sys.argv[1], sys.argv[2], sys.argv[3], \
    sys.argv[4], sys.argv[5:]


def norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


wanted = {norm(p.split('==')[0]): p.split('==')[1] for p in pins}
covered = set(wanted) | {norm(n) for n in (present + ' ' + excluded).split()}
env = dict(python_version=py_version, python_full_version=py_version + '.0',
           sys_platform='linux', platform_system='Linux', os_name='posix',
           platform_machine='x86_64', implementation_name='cpython', extra='')
found, missing, total = {}, [], 0
for path in sorted(glob.glob(os.path.join(dest, '*.whl'))):
    name, version = os.path.basename(path).split('-')[:2]
    if wanted.get(norm(name)) != version:
        continue  # a wheel of another list or version in the same folder
    found[norm(name)] = path
    total += os.path.getsize(path)
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        headers = Parser().parsestr(z.read(meta).decode())
    for line in headers.get_all('Requires-Dist') or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if norm(req.name) not in covered:
            missing.append(f'{req.name} (required by {name} {version})')
    print(f'{os.path.getsize(path) / 2**20:7.2f} MiB  {os.path.basename(path)}')
absent = sorted(set(wanted) - set(found))
print(f'{len(found)} wheels, {total / 2**20:.1f} MiB in {dest}')
if absent or missing:
    for name in absent:
        print(f'error: no wheel of {name}=={wanted[name]} in {dest}', file=sys.stderr)
    for req in sorted(set(missing)):
        print(f'error: {req} is neither downloaded nor on the GPU machine: add it to '
              'WHEELS (or to PRESENT / EXCLUDED, saying why)', file=sys.stderr)
    sys.exit(1)
EOF
