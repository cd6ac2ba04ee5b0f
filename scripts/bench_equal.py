"""Are two ``chorus bench`` results the same but for timings? For a change that must not change behaviour
(a refactor): every record (plan stages, reason, similarity, hit, tokens, forwards, attribute checks, PSNR)
and every aggregate (hit rates, token counts, accuracies, pairings, the cache-size sweep) must be equal;
wall times, throughputs and latencies may differ. Prints the differing fields (none: exit 0) and a table of
hit rate, tokens per request and accuracy per system, stream and step count.

    python scripts/bench_equal.py before/results/quick.json after/results/quick.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

TIMINGS = {
    "seconds",
    "wall_share",
    "stage_seconds",
    "stage_seconds_per_request",
    "throughput_rps",
    "speedup",
    "latency_overhead",
    "wall_seconds",
    "started_at",
    "machine",
}


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS and not k.startswith("latency_")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def differences(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    if type(a) is not type(b):
        yield path, a, b
    elif isinstance(a, dict):
        for key in sorted(a.keys() | b.keys()):
            yield from differences(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield f"{path}[len]", len(a), len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b


def figures(result: dict[str, Any]) -> dict[tuple, tuple[float, float, float]]:
    """(system, stream, steps, batch) -> (hit rate, tokens per request, accuracy over all attributes)."""
    return {
        (row["system"], row["stream"], row["steps"], row["batch_size"]): (
            row["hit_rate"],
            row["tokens_per_request"],
            row["accuracy"]["all"],
        )
        for row in result["rows"]
        if row["phase"] == "all"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    before, after = (json.loads(open(path).read()) for path in (args.before, args.after))
    found = list(differences(without_timings(before), without_timings(after)))
    print(f"{len(before['records'])} records, {len(before['rows'])} rows; fields that differ but timings: {len(found)}")
    for path, a, b in found[:50]:
        print(f"  {path}: {a!r} -> {b!r}")
    ours, theirs = figures(before), figures(after)
    print("\n| system | stream | steps | batch | hit rate | tokens/request | accuracy (all) | equal |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(ours):
        hits, tokens, accuracy = ours[key]
        same = "yes" if ours[key] == theirs.get(key) else "NO"
        print(f"| {' | '.join(map(str, key))} | {hits:.3f} | {tokens:.0f} | {accuracy:.3f} | {same} |")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
