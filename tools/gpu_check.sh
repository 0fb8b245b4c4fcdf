#!/usr/bin/env bash
# The GPU check (DESIGN.md, device rules) on the first CUDA GPU a machine has:
# the gpu tests, the synthetic main job in fp32 and --amp next to the CPU
# numbers, DDP with a kill and a resume, the GPU benchmark; one JSON report
# and a short table (README "Performance"). The logic is in
# mmseg_ddb/tools/gpu_check.py (also installed as ddb-gpu-check):
#   bash tools/gpu_check.sh [--wheels DIR] [--only PARTS | --skip PARTS]
#        [--budget SECONDS] [--work-dir DIR] [--out FILE] [--dry-run]
# --wheels DIR: on a machine without internet, first install the wheels that
# tools/gpu_wheels.sh downloaded elsewhere into $GPU_CHECK_SITE (default
# /tmp/site) and put it on PYTHONPATH, before this checkout.
# Environment: PYTHON (python3), GPU_CHECK_SITE.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/site}
WHEELS=""
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --wheels)
            if [ $# -lt 2 ]; then
                echo "error: --wheels needs a folder of .whl files" >&2
                exit 2
            fi
            WHEELS=$2
            shift 2 ;;
        --wheels=*) WHEELS=${1#--wheels=}; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
SEARCH=$ROOT
if [ -n "$WHEELS" ]; then
    shopt -s nullglob
    FILES=("$WHEELS"/*.whl)
    shopt -u nullglob
    if [ ${#FILES[@]} -eq 0 ]; then
        echo "error: --wheels $WHEELS: no .whl file there; run bash tools/gpu_wheels.sh" \
             "on a machine with internet and bring its .whl folder" >&2
        exit 2
    fi
    mkdir -p "$SITE"
    if "$PYTHON" -m pip --version > /dev/null 2>&1; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
            "${FILES[@]}"
    else  # no pip: a wheel is a zip of its files in their installed places
        for wheel in "${FILES[@]}"; do
            "$PYTHON" -m zipfile -e "$wheel" "$SITE"
        done
    fi
    echo "installed ${#FILES[@]} wheels from $WHEELS into $SITE"
    SEARCH=$SITE:$ROOT
fi
export PYTHONPATH="$SEARCH${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c "import mmengine, mmcv, mmseg" > /dev/null 2>&1; then
    echo "error: mmengine / mmcv-lite / mmsegmentation do not import with $PYTHON:" \
         "pip install -e . first, or without internet, run bash tools/gpu_wheels.sh" \
         "on a machine with internet and pass --wheels with its .whl folder" >&2
    exit 2
fi
exec "$PYTHON" -m mmseg_ddb.tools.gpu_check "${ARGS[@]}"
