"""scripts/gpu_bench.py's code path on a CPU (what scripts/gpu_check.sh times on a GPU at the 1.3B config):
a capturing miss, a seed variant that skips its Stage 1, a replay that runs nothing."""

import json
import subprocess
import sys


def test_tiny_bench_runs_the_miss_variant_and_replay():
    args = ["--config", "tiny", "--device", "cpu", "--dtype", "fp32", "--steps", "4", "20"]
    size = ["--frames", "9", "--height", "64", "--width", "96"]
    result = subprocess.run(
        [sys.executable, "scripts/gpu_bench.py", *args, *size], capture_output=True, text=True, check=True, timeout=300
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["steps"], r["steps_run"]) for r in rows] == [(4, 4), (4, 2), (4, 0), (20, 20), (20, 10), (20, 0)]
    assert rows[0]["entry_bytes"] == 2 * 16 * 3 * 8 * 12 * 2  # latents after steps 2 and 4, fp16, no maps
    assert rows[3]["entry_bytes"] > rows[0]["entry_bytes"] and all(r["tokens_per_s"] > 0 for r in rows[:2])
