"""Per-request records aggregated per system, stream, phase, batch size and step count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chorus.bench.systems import Record
from chorus.eval.checker import ATTRIBUTES
from chorus.eval.fidelity import psnr, ssim

PSNR_CAP_DB = 60.0  # identical videos have infinite PSNR; capped so that means stay finite


def add_fidelity(records: Sequence[Record], frames: np.ndarray, reference: np.ndarray) -> None:
    """PSNR/SSIM of each output against the no-cache output of the same prompt and seed."""
    for record, video, ref in zip(records, frames, reference):
        record.psnr = min(psnr(video, ref), PSNR_CAP_DB)
        record.ssim = ssim(video, ref)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _accuracy(records: Sequence[Record]) -> dict[str, float | None]:
    out = {a: _mean(float(r.correct[a]) for r in records) for a in ATTRIBUTES}
    out["all"] = _mean(float(all(r.correct.values())) for r in records)
    return out


def summarize(records: Sequence[Record]) -> dict[str, Any]:
    """One group's figures. Throughput counts each batch's wall time once."""
    seconds = np.array([r.seconds for r in records])
    wall = float(sum(r.wall_share for r in records))
    hits = [r for r in records if r.hit]
    stages: dict[str, float] = defaultdict(float)
    for r in records:
        for key, value in r.stage_seconds.items():
            stages[key] += value / len(records)
    return {
        "n": len(records),
        "throughput_rps": len(records) / wall if wall > 0 else None,
        "latency_mean_s": float(seconds.mean()),
        "latency_p50_s": float(np.percentile(seconds, 50)),
        "latency_p99_s": float(np.percentile(seconds, 99)),
        "forwards_per_request": float(np.mean([r.forwards for r in records])),
        "tokens_per_request": float(np.mean([r.tokens for r in records])),
        "block_tokens_per_request": float(np.mean([r.block_tokens for r in records])),
        "stage2_steps": sum(r.stage2 for r in records),  # what a TGAA ablation can differ on
        "hit_rate": len(hits) / len(records),
        "hits": len(hits),
        "cache_bytes": records[-1].cache_bytes,
        "accuracy": _accuracy(records),
        "accuracy_hits": _accuracy(hits),
        "psnr_db": _mean(r.psnr for r in records),
        "ssim": _mean(r.ssim for r in records),
        "psnr_db_hits": _mean(r.psnr for r in hits),
        "stage_seconds_per_request": dict(stages),
    }


def group_rows(records: Sequence[Record], steps: int, setting: str | None = None) -> list[dict[str, Any]]:
    """Summaries per (system, stream, batch size) and phase ("cold", "warm", "all")."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        groups[(r.system, r.stream, r.batch_size, r.phase)].append(r)
        groups[(r.system, r.stream, r.batch_size, "all")].append(r)
    rows = []
    for (system, stream, batch, phase), members in sorted(groups.items()):
        rows.append(
            {"system": system, "setting": setting or system, "stream": stream, "phase": phase}
            | {"batch_size": batch, "steps": steps}
            | summarize(members)
        )
    return rows


def add_ratios(rows: list[dict[str, Any]], baseline: str = "no-cache") -> None:
    """Speedup (throughput ratio) and accuracy change against the baseline's row of the same stream, phase,
    batch size and step count."""
    base = {(r["stream"], r["phase"], r["batch_size"], r["steps"]): r for r in rows if r["system"] == baseline}
    for row in rows:
        ref = base.get((row["stream"], row["phase"], row["batch_size"], row["steps"]))
        if ref is None:
            row["speedup"] = row["latency_overhead"] = row["accuracy_delta"] = row["compute_ratio"] = None
            continue
        row["speedup"] = row["throughput_rps"] / ref["throughput_rps"]
        row["latency_overhead"] = row["latency_mean_s"] / ref["latency_mean_s"] - 1
        row["compute_ratio"] = row["block_tokens_per_request"] / ref["block_tokens_per_request"]
        acc, ref_acc = row["accuracy"]["all"], ref["accuracy"]["all"]
        row["accuracy_delta"] = None if acc is None or ref_acc is None else acc - ref_acc
