#!/usr/bin/env bash
# GPU check for real Wan2.1 serving. On a CUDA machine: the GPU-marked tests, then a random-weight Wan2.1
# 1.3B transformer timed through the engine at 81x480x832, bf16, 4 and 50 steps, with and without cache hits
# (per-step time, tokens/s, peak memory, entry bytes; JSON lines). Budget: under 10 minutes on one H200.
# On a machine without CUDA it says so and runs the CPU parts: the equality tests against WanPipeline, the
# entry-size table and the same timing code on a tiny config.
#   scripts/gpu_check.sh [OUT_DIR]     (default: gpu-check/; results land in OUT_DIR/*.txt and *.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-gpu-check}
mkdir -p "$OUT"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  "$PY" -c 'import torch; print("CUDA:", torch.cuda.get_device_name(0), "torch", torch.__version__)' | tee "$OUT/device.txt"
  timeout 240 "$PY" -m pytest -q -m gpu tests/gpu -s 2>&1 | tee "$OUT/gpu-tests.txt"
  timeout 420 "$PY" scripts/gpu_bench.py --config 1.3b --device cuda --dtype bf16 --steps 4 50 \
    --frames 81 --height 480 --width 832 | tee "$OUT/bench.jsonl"
else
  echo "no CUDA device here: running the CPU parts only (GPU tests skipped, tiny timing config)" | tee "$OUT/device.txt"
  timeout 600 "$PY" -m pytest -q tests/unit/test_wan_folder.py tests/unit/test_wan_folder_reuse.py \
    tests/unit/test_entry_size.py tests/gpu -s 2>&1 | tee "$OUT/cpu-tests.txt"
  "$PY" scripts/gpu_bench.py --config tiny --device cpu --dtype fp32 --steps 4 20 \
    --frames 9 --height 64 --width 96 | tee "$OUT/bench.jsonl"
fi
"$PY" scripts/entry_sizes.py | tee "$OUT/entry-sizes.txt"
