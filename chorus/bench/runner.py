"""The whole benchmark run: traces, the no-cache reference, honest tuning of the intra-request caches,
every system on every stream, batched runs, the cache-budget sweep, for each step-count regime."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chorus.bench.metrics import add_fidelity, add_ratios, group_rows, paired_rows, summarize
from chorus.bench.systems import (
    IntraCache,
    Record,
    System,
    SystemRun,
    calibrate_mag_ratios,
    make_request,
    nirvana,
    run_interleaved,
)
from chorus.bench.workload import REPEAT_SHARE, TraceItem, make_trace, prefix, save_trace
from chorus.cache.embedder import PromptEmbedder
from chorus.engine.capture import CaptureConfig
from chorus.engine.staged import generate
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.reuse.session import ReuseConfig

NO_CACHE = System("no-cache")
CHORUS = System("chorus", ReuseConfig())  # the service's defaults
NO_CONTEXT = CaptureConfig(context_steps=())
NIRVANA_K25_SIGMA, NIRVANA_K50_SIGMA = 0.9, 0.75
MIN_TUNED_PSNR_DB = 30.0  # an intra-request cache setting must stay this close to the no-cache output
MAX_TUNED_ACCURACY_DROP = 0.02  # and lose at most this much attribute accuracy on the tuning prompts


@dataclass(frozen=True)
class RunConfig:
    name: str
    streams: dict[str, tuple[int, int]]  # stream -> (requests, warm-up prefix)
    steps: tuple[int, ...] = (4, 50)  # regimes; the first is the main one (all streams, batching, sweep)
    many_streams: tuple[str, ...] = ("similar",)  # streams run in the other regimes
    many_requests: int | None = None  # the other regimes run this many first requests of those streams (None: all)
    batch_size: int = 4  # the batched runs (no cache, NIRVANA-style, Chorus on the similar stream)
    budgets: tuple[float, ...] = (0.1, 0.25, 0.5)  # cache budgets, as shares of the unbounded cache's bytes
    fbc_thresholds: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    mag_thresholds: tuple[float, ...] = (0.02, 0.06, 0.15, 0.3)
    dbcache_thresholds: tuple[float, ...] = (0.04, 0.08, 0.16, 0.32)  # cache-dit's DBCache, an outside peer
    tune_requests: int = 6  # warm similar-stream requests the intra-cache thresholds are tuned on
    seed: int = 0
    repeat_share: float = REPEAT_SHARE  # of every stream: exact repeats of earlier requests
    systems: tuple[str, ...] | None = None  # the systems run (None: every one); a cache is tuned where one runs it
    main_extras: bool = True  # the main regime's batched runs and cache-budget sweep

    def runs(self, system: str) -> bool:
        return self.systems is None or system in self.systems

    def scaled(
        self, requests: int | None = None, steps: tuple[int, ...] | None = None, repeat_share: float | None = None
    ) -> RunConfig:
        """``requests`` for the similar stream (the others get half, warm-up a quarter); other step regimes;
        another share of exact repeats."""
        out = self if repeat_share is None else replace(self, repeat_share=repeat_share)
        if requests is not None:
            sizes = {s: requests if s == "similar" else max(2, requests // 2) for s in self.streams}
            out = replace(out, streams={s: (n, max(1, n // 4)) for s, n in sizes.items()})
        return replace(out, steps=steps) if steps else out


QUICK = RunConfig(
    "quick",
    {"similar": (12, 4), "seed-variants": (6, 2), "unrelated": (6, 2)},
    steps=(4, 8),
    budgets=(0.3,),
    fbc_thresholds=(0.1, 0.3),
    mag_thresholds=(0.06, 0.2),
    dbcache_thresholds=(0.08, 0.24),
    tune_requests=3,
)
MEDIUM = RunConfig("medium", {"similar": (40, 10), "seed-variants": (16, 4), "unrelated": (16, 4)}, steps=(4, 20))
# Full mode's main comparison (Chorus vs no cache, similar stream, warm) should carry a 95% interval within
# +-3 points. Paired, its half-width is about 1.96 * sqrt(var(d) / n) times the root of the sources' design
# effect, for per-request differences d (var(d) about the share of requests on which the two disagree): at
# a tenth disagreeing that is some 430 warm requests, at a seventh some 610, at a design effect of 1; each
# report prints what its own run would need (``chorus.bench.paired.requests_needed``).
# 600 warm requests from about 200 sources; the 50-step regime, ten times dearer per request, runs the
# first 200 of them (its interval is wider, and the report says so).
FULL = RunConfig(
    "full",
    {"similar": (800, 200), "seed-variants": (200, 50), "unrelated": (200, 50)},
    steps=(4, 50),
    many_requests=200,
)
# The many-step regime on its own, sized to fit a session on the 2-core machine: at 50 steps a request costs
# ~12x a 4-step one, so only the similar stream, the main comparison's systems (no cache, MagCache,
# NIRVANA-style reuse, Chorus and its nearest-entry ablation, Chorus + MagCache) and no batched runs or budget
# sweep; 400 requests, 300 of them warm. Paired, the interval is narrow where the two sides rarely disagree (a
# miss and a replayed repeat compute the same clip), and the report prints how many requests its own run would
# have needed for +-3 points.
MANY_STEPS = RunConfig(
    "many-steps",
    {"similar": (400, 100)},
    steps=(50,),
    systems=("no-cache", "magcache", "nirvana-k50", "chorus", "chorus-nearest", "chorus+magcache"),
    main_extras=False,
)
MODES = {c.name: c for c in (QUICK, MEDIUM, FULL, MANY_STEPS)}


def reuse_systems(*intra: IntraCache | None) -> list[System]:
    """NIRVANA-style reuse, Chorus and its ablations, and Chorus composed with each intra-request cache given
    (on the steps a hit computes)."""
    systems = [
        # K: a quarter and a half of the steps on the shipped model's grid (shift 3: sigma 0.9 and 0.75)
        nirvana("nirvana-k25", NIRVANA_K25_SIGMA),  # Stage 1 as long as Chorus' Stage 1
        nirvana("nirvana-k50", NIRVANA_K50_SIGMA),  # Stage 1 reaching about Chorus' savings
        CHORUS,
        replace(CHORUS, name="chorus+tgaa", reuse=replace(CHORUS.reuse, tgaa=TGAAConfig(alpha=2.0))),  # ablation
        # ablation: Stage 2 without the source's context (its misses store none, so every Stage 2 is context-free)
        replace(CHORUS, name="chorus-no-context", reuse=replace(CHORUS.reuse, capture=NO_CONTEXT)),
        # ablation: the nearest entry only, not the nearby one whose words admit the largest plan
        replace(CHORUS, name="chorus-nearest", reuse=replace(CHORUS.reuse, lookup_candidates=1)),
    ]
    for cache in intra:
        if cache is not None:
            systems.append(replace(CHORUS, name=f"chorus+{cache.system}", intra=cache))
    return systems


class Benchmark:
    def __init__(
        self,
        adapter: VideoModelAdapter,
        embedder: PromptEmbedder,
        config: RunConfig,
        out_dir: Path,
        log: Callable[[str], None] = print,
    ) -> None:
        self.adapter, self.embedder, self.config, self.out_dir, self.log = adapter, embedder, config, out_dir, log
        self.records: list[Record] = []
        self.rows: list[dict[str, Any]] = []
        self.tuning: list[dict[str, Any]] = []
        self.sweep: list[dict[str, Any]] = []
        self.chosen: dict[str, Any] = {}
        self.described: dict[str, dict[str, Any]] = {}  # every system setting run, by name

    def _run(
        self,
        system: System,
        trace: list[TraceItem],
        steps: int,
        reference: np.ndarray | None,
        budget_bytes: int | None = None,
    ) -> tuple[list[Record], np.ndarray]:
        [(records, frames)] = self._run_together([system], trace, steps, reference, budget_bytes=budget_bytes)
        return records, frames

    def _run_together(
        self,
        systems: list[System],
        trace: list[TraceItem],
        steps: int,
        reference: np.ndarray | None,
        batch_size: int = 1,
        budget_bytes: int | None = None,
    ) -> list[tuple[list[Record], np.ndarray]]:
        """Each system's records and frames for the trace, run interleaved (see ``run_interleaved``);
        fidelity is measured against ``reference`` (None: the run's own frames, as for no cache)."""
        for system in systems:
            label = system.name if system.intra is None else f"{system.name}:{system.intra.label}"
            self.described.setdefault(label, system.describe())
        tick = time.perf_counter()
        runs = [SystemRun(self.adapter, self.embedder, system, steps, budget_bytes) for system in systems]
        results = run_interleaved(runs, trace, batch_size)
        for records, frames in results:
            add_fidelity(records, frames, frames if reference is None else reference)
        names = ", ".join(system.name for system in systems)
        self.log(f"{steps} steps, {trace[0].stream}, {names}, batch {batch_size}: {time.perf_counter() - tick:.1f}s")
        return results

    def _keep(self, records: list[Record], steps: int, setting: str | None = None) -> list[dict[str, Any]]:
        self.records += records
        rows = group_rows(records, steps, setting)
        self.rows += rows
        return rows

    def _tune(self, kind: str, thresholds: tuple[float, ...], items, reference, base, steps, ratios=None):
        """Run each threshold on the tuning prompts; pick the one computing least that keeps PSNR and
        accuracy within bounds of no cache (the smallest threshold if none does)."""
        tried = []
        for threshold in thresholds:
            cache = IntraCache(kind, threshold, ratios)
            records, _ = self._run(System(cache.label, intra=cache), items, steps, reference)
            row = {"kind": kind, "threshold": threshold, "steps": steps} | summarize(records)
            row["compute_ratio"] = row["block_tokens_per_request"] / base["block_tokens_per_request"]
            row["speedup"] = row["throughput_rps"] / base["throughput_rps"]
            row["accuracy_delta"] = row["accuracy"]["all"] - base["accuracy"]["all"]
            row["within_bounds"] = (
                row["psnr_db"] >= MIN_TUNED_PSNR_DB and row["accuracy_delta"] >= -MAX_TUNED_ACCURACY_DROP
            )
            tried.append((cache, row))
        self.tuning += [row for _, row in tried]
        ok = [(c, r) for c, r in tried if r["within_bounds"]]
        cache, row = min(ok, key=lambda cr: cr[1]["compute_ratio"]) if ok else tried[0]
        self.chosen[f"{kind}@{steps}"] = {
            "threshold": cache.threshold,
            "within_bounds": row["within_bounds"],
            "compute_ratio": row["compute_ratio"],
            "psnr_db": row["psnr_db"],
        }
        return cache

    def regime(self, steps: int, traces: dict[str, list[TraceItem]], main: bool) -> None:
        streams = [s for s in traces if main or s in self.config.many_streams]
        if not main and self.config.many_requests is not None:
            n = self.config.many_requests
            traces = {s: prefix(t, n, max(1, n // 4)) if n < len(t) else t for s, t in traces.items()}
        reference = {}  # no-cache frames: what fidelity is measured against, and what tuning compares with
        for stream in streams:
            _, reference[stream] = self._run(NO_CACHE, traces[stream], steps, None)
        warm = [i for i in traces["similar"] if i.phase == "warm"][: self.config.tune_requests]
        tune_ref = reference["similar"][[i.index for i in warm]]
        base_records, _ = self._run(NO_CACHE, warm, steps, tune_ref)
        base = summarize(base_records)
        ratios = calibrate_mag_ratios(self.adapter, [make_request(self.adapter, i, steps) for i in warm[:2]])
        self.chosen[f"mag_ratios@{steps}"] = list(ratios)
        runs = self.config.runs

        def tuned(kind: str, system: str, thresholds: tuple[float, ...]) -> IntraCache | None:
            """The cache tuned, where a system run alone or under Chorus uses it."""
            if not (runs(system) or runs(f"chorus+{system}")):
                return None
            return self._tune(kind, thresholds, warm, tune_ref, base, steps, ratios if kind == "mag" else None)

        fbc = tuned("fbc", "fbc", self.config.fbc_thresholds)
        mag = tuned("mag", "magcache", self.config.mag_thresholds)
        dbcache = tuned("dbcache", "dbcache", self.config.dbcache_thresholds)
        # DBCache runs alone: it counts its steps itself, so a hit that starts at step k1 would misread them
        alone = (System(c.system, intra=c) for c in (fbc, mag, dbcache) if c is not None)
        systems = [s for s in (NO_CACHE, *alone, *reuse_systems(fbc, mag)) if runs(s.name)]
        unbounded: dict[str, int] = {}
        for stream in streams:
            for system, (records, _) in zip(
                systems, self._run_together(systems, traces[stream], steps, reference[stream])
            ):
                self._keep(records, steps, system.intra.label if system.intra else None)
                unbounded[f"{system.name}/{stream}"] = records[-1].cache_bytes
        if not (main and self.config.main_extras):
            return
        similar = traces["similar"]
        batched = [NO_CACHE, nirvana("nirvana-k50", NIRVANA_K50_SIGMA), CHORUS]
        for records, _ in self._run_together(batched, similar, steps, reference["similar"], self.config.batch_size):
            self._keep(records, steps)
        full_bytes = unbounded["chorus/similar"]
        for share in self.config.budgets:
            budget = int(full_bytes * share)
            records, _ = self._run(CHORUS, similar, steps, reference["similar"], budget_bytes=budget)
            self.sweep.append(self._sweep_point("chorus", share, budget, records))
        for row in self.rows:
            if row["steps"] == steps and row["stream"] == "similar" and row["batch_size"] == 1:
                if row["phase"] == "warm" and row["system"] in ("chorus", "nirvana-k50"):
                    self.sweep.append(self._sweep_point(row["system"], 1.0, None, None, row))

    @staticmethod
    def _sweep_point(system, share, budget, records, row=None) -> dict[str, Any]:
        if row is None:
            row = summarize([r for r in records if r.phase == "warm"])
        return {
            "system": system,
            "budget_share": share,
            "budget_bytes": budget,
            "hit_rate": row["hit_rate"],
            "cache_bytes": row["cache_bytes"],
            "accuracy_all": row["accuracy"]["all"],
            "throughput_rps": row["throughput_rps"],
        }

    def run(self) -> dict[str, Any]:
        config, started = self.config, time.time()
        traces = {s: make_trace(s, n, w, config.seed, config.repeat_share) for s, (n, w) in config.streams.items()}
        for stream, items in traces.items():
            save_trace(self.out_dir / "traces" / f"{config.name}-{stream}.jsonl", items)
        generate(self.adapter, [make_request(self.adapter, traces["similar"][0], config.steps[0])])  # warm-up
        for i, steps in enumerate(config.steps):
            self.regime(steps, traces, main=i == 0)
        add_ratios(self.rows)
        return {
            "mode": config.name,
            "config": asdict(config),
            "model": {"id": self.adapter.model_id, "revision": self.adapter.revision},
            "machine": {
                "platform": platform.platform(),
                "device": str(self.adapter.device),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            },
            "started_at": started,
            "wall_seconds": time.time() - started,
            "streams": list(traces),
            "systems": sorted({r["system"] for r in self.rows}),
            "system_settings": self.described,
            "intra_cache_choice": self.chosen,
            "tuning": self.tuning,
            "rows": self.rows,
            "paired": paired_rows(self.records, traces),
            "sweep": self.sweep,
            "records": [asdict(r) for r in self.records],
        }
