"""The systems compared, and the loop that runs one trace through one of them.

Every system is the service's own cache session (``chorus.reuse.session``) over an in-memory backend,
on the same model: with the cache off (no cache, or a diffusers intra-request cache enabled on the
transformer), or with a reuse config (NIRVANA-style: Stage 1 only; Chorus: Stage 1 + 2 + 3, TGAA on or
off). A request's time is end to end through the session: key embedding, lookup and planning, the
staged denoise, decoding, settling (admission, eviction).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig

from chorus.bench.workload import TraceItem
from chorus.cache.backends.memory import MemoryBackend
from chorus.cache.embedder import PromptEmbedder
from chorus.engine.staged import generate
from chorus.eval.checker import ATTRIBUTES, read_clips
from chorus.fingerprint import request_fingerprint
from chorus.models.base import VideoModelAdapter
from chorus.reuse.plan import ReusePolicy
from chorus.reuse.session import CacheJob, DenoiseStats, GenerationRequest, ReuseCache, ReuseConfig

CACHE_OFF = ReuseConfig(enabled=False)


def _cache_dit() -> Any:
    """cache-dit, imported on first use with its INFO logs off (it logs every enable and disable, i.e. twice
    per request in the bench); ``CACHE_DIT_LOG_LEVEL`` set by the caller wins."""
    os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")
    import cache_dit

    return cache_dit


@dataclass(frozen=True)
class IntraCache:
    """An intra-request cache and its threshold: diffusers' FirstBlockCache ("fbc") or MagCache ("mag", which
    also needs its calibrated ratios), or cache-dit's DBCache ("dbcache"), an outside peer."""

    kind: str
    threshold: float
    mag_ratios: tuple[float, ...] | None = None

    def attach(self, transformer: torch.nn.Module, steps: int) -> None:
        """Enable the cache on ``transformer`` for requests of ``steps`` steps; ``refresh`` before each
        engine call."""
        if self.kind == "dbcache":
            _cache_dit().enable_cache(transformer, cache_config=self._dbcache_config(steps))
        else:
            transformer.enable_cache(self._diffusers_config(steps))

    def detach(self, transformer: torch.nn.Module) -> None:
        if self.kind == "dbcache":
            _cache_dit().disable_cache(transformer)
        else:
            transformer.disable_cache()

    def refresh(self, transformer: torch.nn.Module, steps: int) -> None:
        """Before an engine call: cache-dit's implicit restart after ``steps`` forwards leaves state behind (the
        next request's video differs from the same request run first); diffusers' hooks are reset by the
        engine itself (``reset_intra_caches``)."""
        if self.kind == "dbcache":
            _cache_dit().refresh_context(transformer, num_inference_steps=steps)

    def _diffusers_config(self, steps: int) -> Any:
        if self.kind == "fbc":
            return FirstBlockCacheConfig(threshold=self.threshold)
        # the first step is never skipped (there is no residual to reuse yet)
        return MagCacheConfig(
            threshold=self.threshold,
            mag_ratios=list(self.mag_ratios),
            num_inference_steps=steps,
            retention_ratio=1 / steps,
            max_skip_steps=max(1, steps // 4),
        )

    def _dbcache_config(self, steps: int) -> Any:
        # F1B0: the first block decides, as FirstBlockCache; CFG rows share one forward in our loop
        return _cache_dit().DBCacheConfig(
            num_inference_steps=steps,
            residual_diff_threshold=self.threshold,
            max_warmup_steps=max(1, steps // 12),  # cache-dit's 4 of 50 at 50 steps
            Fn_compute_blocks=1,
            Bn_compute_blocks=0,
            enable_separate_cfg=False,
        )

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.threshold:g}"

    @property
    def system(self) -> str:
        """The bench's name for the system this cache runs as alone, and after "chorus+" composed."""
        return {"fbc": "fbc", "mag": "magcache", "dbcache": "dbcache"}[self.kind]


@dataclass(frozen=True)
class System:
    name: str
    reuse: ReuseConfig = CACHE_OFF  # the session's config; CACHE_OFF: no inter-request cache
    intra: IntraCache | None = None

    @property
    def kind(self) -> str | None:
        """None (no inter-request cache), "stage1" (NIRVANA-style) or "chorus" (with Stage 2)."""
        if not self.reuse.enabled:
            return None
        return "chorus" if self.reuse.policy.runs_stage2 else "stage1"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reuse": self.kind,
            "policy": vars(self.reuse.policy) if self.kind else None,
            "tgaa_alpha": self.reuse.tgaa.alpha if self.kind == "chorus" else None,
            "intra": self.intra.label if self.intra else None,
        }


def nirvana(name: str, stage1_sigma: float) -> System:
    """Stage 1 only: the first K steps skipped, K the steps down to ``stage1_sigma`` (grows with similarity),
    no region, no TGAA, no calibrated Stage-2 plans, and edits reused at any step count (NIRVANA has no step
    floor)."""
    policy = ReusePolicy(stage1_sigma=stage1_sigma, stage2_sigma=stage1_sigma, min_edit_steps=1, calibrated=False)
    return System(name, ReuseConfig(policy=policy))


@dataclass
class Record:
    """One request's measurements in one system's run."""

    index: int
    stream: str
    phase: str
    system: str
    steps: int
    batch_size: int  # requests per engine call asked for (the last call of a run may hold fewer)
    wall_share: float  # this request's share of its call's wall time
    seconds: float  # end to end; in a batch, the batch's time (all its requests finish together)
    forwards: float  # transformer calls, shared evenly in a batch
    tokens: float  # video tokens through the transformer (cond + uncond)
    block_tokens: float  # tokens actually run through blocks / number of blocks (counts intra-cache skips)
    hit: bool
    reason: str
    stage1: int
    stage2: int
    region_fraction: float | None
    similarity: float | None
    cache_bytes: int  # after the request
    stage_seconds: dict[str, float]
    correct: dict[str, bool]
    psnr: float | None = None
    ssim: float | None = None


class BlockTokens:
    """Counts tokens entering each block's self-attention: what intra-request caches really computed."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.count = 0
        self.layers = len(transformer.blocks)
        self.handles = [b.attn1.register_forward_pre_hook(self._hook) for b in transformer.blocks]

    def _hook(self, _module: torch.nn.Module, args: tuple) -> None:
        self.count += args[0].shape[:2].numel()

    def take(self) -> float:
        count, self.count = self.count, 0
        return count / self.layers

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def make_request(adapter: VideoModelAdapter, item: TraceItem, steps: int) -> GenerationRequest:
    return GenerationRequest.at_defaults(adapter.limits, item.prompt, item.seed, steps)


def calibrate_mag_ratios(adapter: VideoModelAdapter, requests: list[GenerationRequest]) -> tuple[float, ...]:
    """MagCache's per-step residual magnitude ratios for this model, averaged over ``requests`` (diffusers'
    calibration mode prints them at the end of each run; that print is the only place they surface)."""
    steps = requests[0].num_inference_steps
    adapter.transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=steps))
    runs = []
    try:
        for request in requests:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                generate(adapter, [request])
            lines = [line for line in printed.getvalue().splitlines() if line.startswith("[") and "]" in line]
            runs.append(ast.literal_eval(lines[-1]))
    finally:
        adapter.transformer.disable_cache()
    return tuple(float(x) for x in np.mean(np.array(runs), axis=0))


class SystemRun:
    """Runs trace items through one system: its own cache session over its own in-memory backend."""

    def __init__(
        self,
        adapter: VideoModelAdapter,
        embedder: PromptEmbedder,
        system: System,
        steps: int,
        budget_bytes: int | None = None,
    ) -> None:
        self.adapter, self.system, self.steps = adapter, system, steps
        self.backend = MemoryBackend(budget_bytes)
        self.cache = ReuseCache(self.backend, embedder, system.reuse)
        # Each system remembers the prompts it encoded itself, as if it ran in a worker of its own:
        # with one memory, the system that went first would encode every prompt for the others.
        encoders = (adapter.text_encoder, getattr(embedder, "encoder", None))
        self.text_memories = {id(e): (e, e.new_memory()) for e in encoders if hasattr(e, "remembering")}
        # ... and so does its text-encoding LRU (chorus.models.encodings), sized as the adapter's.
        self.encodings = adapter.encodings.empty_like()

    @contextlib.contextmanager
    def _attached(self) -> Iterator[BlockTokens]:
        """The system's intra-request cache, prompt memory and a block-token counter on the shared model."""
        transformer = self.adapter.transformer
        if self.system.intra is not None:
            self.system.intra.attach(transformer, self.steps)
        counter = BlockTokens(transformer)
        shared_encodings, self.adapter.encodings = self.adapter.encodings, self.encodings
        try:
            with contextlib.ExitStack() as memories:
                for encoder, memory in self.text_memories.values():
                    memories.enter_context(encoder.remembering(memory))
                yield counter
        finally:
            counter.close()
            self.adapter.encodings = shared_encodings
            if self.system.intra is not None:
                self.system.intra.detach(transformer)

    def step(self, chunk: list[TraceItem], batch_size: int) -> tuple[list[Record], np.ndarray]:
        """One session on ``chunk``, a slice of a run of ``batch_size`` requests per call (timed inside;
        attaching the system is not)."""
        with self._attached() as counter:
            return self._chunk(chunk, counter, batch_size)

    def _job(self, item: TraceItem) -> CacheJob:
        request = make_request(self.adapter, item, self.steps)
        fingerprint = request_fingerprint(self.adapter.card, request)
        key = str(item.index)
        return CacheJob(key, request, item.domain, fingerprint=fingerprint, video_key=f"{self.system.name}/{key}")

    def _chunk(self, items: list[TraceItem], counter: BlockTokens, batch_size: int) -> tuple[list[Record], np.ndarray]:
        jobs = [self._job(item) for item in items]
        stats = DenoiseStats()
        if self.system.intra is not None:
            self.system.intra.refresh(self.adapter.transformer, self.steps)
        tick = time.perf_counter()
        session = self.cache.open(self.adapter, jobs)
        rows = session.denoise(stats=stats)
        videos = self.backend.videos  # the benchmark's "store": a delivered video is its frames
        for job, row in zip(jobs, rows):
            if row is not None:  # None: an exact repeat, served a copy of its source's video
                videos[job.video_key] = row.cpu().numpy()
        session.settle({job.key for job in jobs})  # every request of the benchmark is delivered
        seconds = time.perf_counter() - tick
        frames = np.stack([videos[job.video_key] for job in jobs])
        share = 1 / len(items)
        # The cache key's MiniLM forward is the one generation would run anyway (the encoder remembers
        # the prompt), so it is timed apart from the cache's own work.
        phases = {"encode": "embed", "lookup": "plan", "admit": "settle"}
        stage_seconds = {
            **stats.stage_seconds,
            **{k: session.seconds[v] for k, v in phases.items() if v in session.seconds},
        }
        stage_seconds["other"] = max(0.0, seconds - sum(stage_seconds.values()))  # encoding, decoding, glue
        block_tokens = counter.take()
        records = []
        for item, job, reading in zip(items, jobs, read_clips(frames)):
            plan = job.plan
            records.append(
                Record(
                    index=item.index,
                    stream=item.stream,
                    phase=item.phase,
                    system=self.system.name,
                    steps=self.steps,
                    batch_size=batch_size,
                    wall_share=seconds * share,
                    seconds=seconds,
                    forwards=stats.forwards * share,
                    tokens=stats.tokens * share,
                    block_tokens=block_tokens * share,
                    hit=plan.hit,
                    reason=plan.reason,
                    stage1=plan.stage1,
                    stage2=plan.stage2,
                    region_fraction=plan.region_fraction,
                    similarity=plan.similarity,
                    cache_bytes=self.backend.nbytes,
                    stage_seconds={k: v * share for k, v in stage_seconds.items()},
                    correct={a: getattr(reading, a) == getattr(item.spec, a) for a in ATTRIBUTES},
                )
            )
        return records, frames


def run_interleaved(
    runs: Sequence[SystemRun], trace: list[TraceItem], batch_size: int = 1
) -> list[tuple[list[Record], np.ndarray]]:
    """Each system's records and frames for the trace, the systems taking turns chunk by chunk, so
    that load from outside (a shared machine) slows them alike and their ratios hold."""
    records: list[list[Record]] = [[] for _ in runs]
    frames: list[list[np.ndarray]] = [[] for _ in runs]
    for start in range(0, len(trace), batch_size):
        for i, run in enumerate(runs):
            chunk_records, chunk_frames = run.step(trace[start : start + batch_size], batch_size)
            records[i] += chunk_records
            frames[i].append(chunk_frames)
    return [(r, np.concatenate(f)) for r, f in zip(records, frames)]
