"""Per-request records aggregated per system, stream, phase, batch size and step count; and paired with
the no-cache records of the same requests, per request kind (``paired_rows``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chorus.bench.paired import paired_difference, requests_needed
from chorus.bench.systems import Record
from chorus.bench.workload import TraceItem, sources
from chorus.eval.checker import ATTRIBUTES, CORE
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


def core_right(correct: dict[str, bool]) -> bool:
    """A request's ``all``: every core attribute right (the figure comparable with the four-attribute
    checker's; size and speed are reported on their own)."""
    return all(correct[a] for a in CORE)


def _accuracy(records: Sequence[Record]) -> dict[str, float | None]:
    out = {a: _mean(float(r.correct[a]) for r in records) for a in ATTRIBUTES}
    out["all"] = _mean(float(core_right(r.correct)) for r in records)
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


ALL_KINDS, HITS = "all", "hits"  # per-kind rows over every request of a group, and over the system's hits
HALF_WIDTH = 0.03  # the interval the main comparison should reach; each row says how many requests that takes


@dataclass(frozen=True)
class Pair:
    """One request as the system and as the baseline served it, with what the trace says of it."""

    on: Record
    off: Record
    kind: str  # TraceItem.kind
    source: int  # the request its parents start from (workload.sources)

    @property
    def edited(self) -> str | None:
        """The attribute the request edits; None where it is no edit."""
        return self.kind if self.kind in ATTRIBUTES else None


def _kind_row(kind: str, pairs: list[Pair]) -> dict[str, Any]:
    """Count, hit rate, compute ratio and paired accuracies (all; the edited attribute on the edits)."""
    clusters = [p.source for p in pairs]
    right_on = [float(core_right(p.on.correct)) for p in pairs]
    right_off = [float(core_right(p.off.correct)) for p in pairs]
    edits = [p for p in pairs if p.edited]
    hits = sum(p.on.hit for p in pairs)
    return {
        "kind": kind,
        "n": len(pairs),
        "hits": hits,
        "sources": len(set(clusters)),
        "hit_rate": hits / len(pairs),
        "compute_ratio": sum(p.on.block_tokens for p in pairs) / max(sum(p.off.block_tokens for p in pairs), 1e-12),
        "accuracy_all": paired_difference(right_on, right_off, clusters).as_dict(),
        "accuracy_edited": None
        if not edits
        else paired_difference(
            [float(p.on.correct[p.edited]) for p in edits],
            [float(p.off.correct[p.edited]) for p in edits],
            [p.source for p in edits],
        ).as_dict(),
        "requests_for_half_width": requests_needed(right_on, right_off, clusters, HALF_WIDTH),
    }


def paired_rows(
    records: Sequence[Record], traces: dict[str, list[TraceItem]], baseline: str = "no-cache", phase: str = "warm"
) -> list[dict[str, Any]]:
    """Per (system, stream, step count, batch size), over the ``phase``'s requests: each system against the
    baseline on the same requests and seeds, for every request (kind "all"), the system's hits ("hits"),
    and each request kind of the trace (edit kinds, seed variants, new prompts). Intervals resample the
    requests' sources (``chorus.bench.paired``)."""
    kinds = {(stream, i.index): i.kind for stream, trace in traces.items() for i in trace}
    source = {(stream, i): s for stream, trace in traces.items() for i, s in sources(trace).items()}
    base = {(r.stream, r.steps, r.batch_size, r.index): r for r in records if r.system == baseline}
    groups: dict[tuple, list[Pair]] = defaultdict(list)
    for r in records:
        ref = base.get((r.stream, r.steps, r.batch_size, r.index))
        if r.system == baseline or r.phase != phase or ref is None:
            continue
        key = (r.stream, r.index)
        groups[(r.system, r.stream, r.steps, r.batch_size)].append(Pair(r, ref, kinds[key], source[key]))
    rows = []
    for (system, stream, steps, batch), pairs in sorted(groups.items()):
        by_kind: dict[str, list[Pair]] = {ALL_KINDS: pairs, HITS: [p for p in pairs if p.on.hit]}
        for p in pairs:
            by_kind.setdefault(p.kind, []).append(p)
        head = {"system": system, "stream": stream, "steps": steps, "batch_size": batch, "phase": phase}
        rows += [head | _kind_row(kind, members) for kind, members in by_kind.items() if members]
    return rows
