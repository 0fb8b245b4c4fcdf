#!/bin/bash
# Two independent stages (R1 ST-cu and ST-ca of the synthetic demo, N
# iterations each, from a finished init checkpoint) run one after the other or
# side by side on a 2-core CPU; prints each variant's wall seconds
# (README, Performance, "The main job's time, lever by lever").
#
#   bash docs/measurements/side_by_side.sh INIT_CKPT [VARIANT ...]
#
#   A  one after the other, torch's 2 threads each (the default pipeline)
#   B  side by side, 1 thread each (what --parallel-paths does on a CPU)
#   C  side by side, 2 threads each, OMP_WAIT_POLICY=PASSIVE
#   E  side by side, 2 threads each, GOMP_SPINCOUNT=1000
#
# A record of a measurement, not a tool. N (default 200) sets the iterations.
set -e
INIT=${1:?usage: side_by_side.sh INIT_CKPT [A|B|C|E ...]}
shift
VARIANTS=${*:-A B B A}
N=${N:-200}
PY=${PYTHON:-python}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
one() { # config threads name
  OMP_NUM_THREADS=$2 $PY -m mmseg_ddb.tools.train configs/synthetic/$1 \
    --work-dir "$OUT/$3" --cfg-options model.backbone.init_cfg.checkpoint="$INIT" \
    train_cfg.max_iters=$N train_cfg.val_interval=100000 > "$OUT/$3.log" 2>&1
}
pair() { # threads: both side by side
  one st_cu_synthetic.py "$1" cu & a=$!
  one st_ca_synthetic.py "$1" ca & b=$!
  wait $a && wait $b
}
for v in $VARIANTS; do
  rm -rf "${OUT:?}"/*
  t0=$(date +%s.%N)
  case $v in
    A) one st_cu_synthetic.py 2 cu; one st_ca_synthetic.py 2 ca ;;
    B) pair 1 ;;
    C) OMP_WAIT_POLICY=PASSIVE pair 2 ;;
    E) GOMP_SPINCOUNT=1000 pair 2 ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  echo "$v $(python3 -c "import time; print(f'{time.time() - $t0:.1f} s')")"
done
