#!/usr/bin/env bash
# Train one stage on a SLURM cluster: srun starts one task per GPU and
# tools/train.py joins them with mmengine's slurm launcher (PyTorch DDP).
#   [GPUS=N] [GPUS_PER_NODE=M] [CPUS_PER_TASK=C] [SRUN_ARGS="..."] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]
# GPUS: tasks in all (default 1; the 2x2 configs want 2), GPUS_PER_NODE:
# tasks and GPUs per node (default GPUS, at most 8), CPUS_PER_TASK: CPU cores
# per task for the data workers (default 5), SRUN_ARGS: more srun options,
# split on spaces (e.g. "--time=24:00:00 --qos=high"). WORK_DIR, if given,
# becomes --work-dir; the remaining arguments go to tools/train.py, e.g.
# --resume or --cfg-options.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
ARGS=()
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    ARGS=(--work-dir "$1")
    shift
fi
GPUS=${GPUS:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
read -r -a EXTRA_SRUN <<< "${SRUN_ARGS:-}"
PYTHON=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    "${EXTRA_SRUN[@]}" \
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${ARGS[@]}" "$@"
