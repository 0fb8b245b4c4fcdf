#!/usr/bin/env bash
# The GPU rows of README "Performance" in one go, on the paper's setting
# (DeepLabV2-R101, 512x512, batch 4; Cityscapes inference protocol 1024x512
# scored at 2048x1024), no dataset needed:
#   bash tools/benchmark_gpu.sh [OUT_DIR]          (default work_dirs/benchmark_gpu)
# writes OUT_DIR/{fp32,bf16,bf16_channels_last}.json and
# OUT_DIR/loader_8_workers.json (the ST config's loader with 8 workers on
# synthetic scenes of the real size in the GTA5 / Cityscapes layouts), then
# prints one line per precision: step times, ratios, bridging share, peak
# memory, inference images/s, bf16 speed-up and memory against fp32, TFLOP/s.
# Then the transformer rows (issue 15): MiT-B5 and DINOv2-B with the
# DAFormer-style head at 512x512, batch 2, fp32 and bf16, written to
# OUT_DIR/<config name>_{fp32,bf16}.json, one summary line each.
# Environment: DEVICE (cuda), CONFIG (the R101 ST config), BENCH_ARGS (more
# benchmark.py options for every run), LOADER_BATCHES (50; 0 skips the loader),
# TRANSFORMER_CONFIGS (space-separated ST configs; empty skips the rows).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-work_dirs/benchmark_gpu}
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-"$ROOT/configs/gtav2cityscapes/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py"}
LOADER_BATCHES=${LOADER_BATCHES:-50}
TRANSFORMER_CONFIGS=${TRANSFORMER_CONFIGS-"$ROOT/configs/gtav2cityscapes/r1_st_cu_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py $ROOT/configs/gtav2cityscapes/r1_st_cu_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py"}
read -r -a EXTRA <<< "${BENCH_ARGS:-}"
COMMON=(--device "$DEVICE" --loader-batches 0 --infer-shape 512 1024
        --infer-label-shape 1024 2048 "${EXTRA[@]}")
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; \
print(torch.cuda.get_device_name(0), 'torch', torch.__version__)"
fi
"$PYTHON" "$ROOT/tools/benchmark.py" "$CONFIG" "${COMMON[@]}" --out "$OUT/fp32.json"
"$PYTHON" "$ROOT/tools/benchmark.py" "$CONFIG" "${COMMON[@]}" --amp --out "$OUT/bf16.json"
"$PYTHON" "$ROOT/tools/benchmark.py" "$CONFIG" "${COMMON[@]}" --amp --channels-last \
    --out "$OUT/bf16_channels_last.json"
if [ "$LOADER_BATCHES" -gt 0 ]; then
    # the loader (after one cheap step of each kind)
    "$PYTHON" "$ROOT/tools/benchmark.py" "$CONFIG" --device "$DEVICE" --amp \
        --iters 1 --warmup 0 "${EXTRA[@]}" --loader-data synthetic \
        --loader-workers 8 --loader-batches "$LOADER_BATCHES" \
        --out "$OUT/loader_8_workers.json"
fi
TRANSFORMER_RUNS=()
for tcfg in $TRANSFORMER_CONFIGS; do
    name=$(basename "$tcfg" .py)
    "$PYTHON" "$ROOT/tools/benchmark.py" "$tcfg" --batch-size 2 --crop 512 "${COMMON[@]}" \
        --out "$OUT/${name}_fp32.json"
    "$PYTHON" "$ROOT/tools/benchmark.py" "$tcfg" --batch-size 2 --crop 512 "${COMMON[@]}" \
        --amp --out "$OUT/${name}_bf16.json"
    TRANSFORMER_RUNS+=("${name}_fp32" "${name}_bf16")
done
"$PYTHON" - "$OUT" "$LOADER_BATCHES" "${TRANSFORMER_RUNS[@]}" <<'EOF'
import json, os, sys
out, loader_batches, transformer_runs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {name: json.load(open(os.path.join(out, f'{name}.json')))
        for name in ('fp32', 'bf16', 'bf16_channels_last')}
fp32 = runs['fp32']
print(f"{fp32['device']}, config: {os.path.basename(fp32['config'])}, "
      f"batch {fp32['batch_size']}, crop {fp32['crop']}, torch {fp32['torch']}")
for name, r in runs.items():
    print(f"{name:20s} sup {r['supervised_ms']:.1f} ms  ST {r['st_ms']:.1f} ms  "
          f"CKD {r['ckd_ms']:.1f} ms  ST/sup {r['st_over_supervised']:.2f}  "
          f"CKD/sup {r['ckd_over_supervised']:.2f}  bridging "
          f"{100 * r['bridging_share_of_st']:.1f} %  ST peak {r['st_peak_mb']:.0f} MB  "
          f"infer {r['inference_images_per_s']:.1f} img/s  "
          f"ST speed-up {fp32['st_ms'] / r['st_ms']:.2f}x  "
          f"ST memory {r['st_peak_mb'] / fp32['st_peak_mb']:.2f} of fp32  "
          f"ST {r.get('st_tflops') or float('nan'):.1f} TFLOP/s")
for name in transformer_runs:
    r = json.load(open(os.path.join(out, f'{name}.json')))
    print(f"{name}: batch {r['batch_size']}, crop {r['crop']}  sup {r['supervised_ms']:.1f} ms  "
          f"ST {r['st_ms']:.1f} ms  CKD {r['ckd_ms']:.1f} ms  ST/sup "
          f"{r['st_over_supervised']:.2f}  CKD/sup {r['ckd_over_supervised']:.2f}  "
          f"peak sup/ST/CKD {r['supervised_peak_mb']:.0f}/{r['st_peak_mb']:.0f}/"
          f"{r['ckd_peak_mb']:.0f} MB  {r['forward_gflop_per_image']:.1f} GFLOP/image  "
          f"ST {r.get('st_tflops') or float('nan'):.1f} TFLOP/s")
if loader_batches > 0:
    loader = json.load(open(os.path.join(out, 'loader_8_workers.json')))
    print(f"loader, 8 workers, synthetic 2048x1024 scenes: "
          f"{loader['loader_pairs_per_s']:.1f} UDA pairs/s")
EOF
