"""scripts/gpu_bench.py's code path on a CPU (what scripts/gpu_check.sh times on a GPU at the 1.3B config):
a capturing miss, a seed variant that skips its Stage 1 (where the policy makes it a hit), a replay that
runs nothing."""

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
    # At 4 steps seed variants are misses (no Stage 1 keeps a variant new), so no variant row there.
    assert [(r["steps"], r["steps_run"]) for r in rows] == [(4, 4), (4, 0), (20, 20), (20, 18), (20, 0)]
    assert rows[0]["entry_bytes"] == 16 * 3 * 8 * 12 * 2  # the final latent, fp16, no maps
    assert rows[2]["entry_bytes"] > rows[0]["entry_bytes"] and rows[0]["tokens_per_s"] > 0 < rows[3]["tokens_per_s"]
