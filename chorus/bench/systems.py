"""The systems compared, and the loop that runs one trace through one of them.

Every system is the same engine on the same model: plain ``generate`` (no cache, or with a diffusers
intra-request cache enabled on the transformer), or ``generate_with_reuse`` with a source cache
(NIRVANA-style: Stage 1 only; Chorus: Stage 1 + 2 + 3, TGAA on or off). A request's time is end to end
through the engine: prompt embedding and lookup, planning, denoising, decoding, admitting its capture.
"""

from __future__ import annotations

import ast
import contextlib
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig

from chorus.bench.memcache import MemoryCache, MemoryEntry
from chorus.bench.workload import TraceItem
from chorus.cache.embedder import PromptEmbedder
from chorus.cache.namespace import Namespace
from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import DenoiseStats, GenerationRequest, generate
from chorus.engine.plan import ReusePlan, ReusePolicy
from chorus.engine.prepare import prepare_reuse
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.tgaa import TGAAConfig
from chorus.eval.checker import ATTRIBUTES, read_clips
from chorus.models.base import VideoModelAdapter


@dataclass(frozen=True)
class IntraCache:
    """A diffusers intra-request cache and its threshold (MagCache also needs its calibrated ratios)."""

    kind: str  # "fbc" (FirstBlockCache) or "mag" (MagCache)
    threshold: float
    mag_ratios: tuple[float, ...] | None = None

    def config(self, steps: int) -> Any:
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

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.threshold:g}"


@dataclass(frozen=True)
class System:
    name: str
    reuse: str | None = None  # None, "stage1" (NIRVANA-style) or "chorus"
    policy: ReusePolicy = field(default_factory=ReusePolicy)
    tgaa: TGAAConfig = field(default_factory=TGAAConfig)
    intra: IntraCache | None = None

    def capture(self, steps: int) -> CaptureConfig | None:
        return None if self.reuse is None else self.policy.capture_for(CaptureConfig(), steps)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reuse": self.reuse,
            "policy": vars(self.policy) if self.reuse else None,
            "tgaa_alpha": self.tgaa.alpha if self.reuse == "chorus" else None,
            "intra": self.intra.label if self.intra else None,
        }


def nirvana(name: str, stage1_share: float) -> System:
    """Stage 1 only (K grows with similarity up to ``stage1_share`` of the steps), no region, no TGAA,
    and edits reused at any step count (NIRVANA has no step floor)."""
    policy = ReusePolicy(stage1_share=stage1_share, stage2_share=0.0, min_edit_steps=1)
    return System(name, "stage1", policy, TGAAConfig(alpha=1.0))


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
    """Runs trace items through one system, keeping its source cache between calls."""

    def __init__(
        self,
        adapter: VideoModelAdapter,
        embedder: PromptEmbedder,
        system: System,
        steps: int,
        budget_bytes: int | None = None,
    ) -> None:
        self.adapter, self.embedder, self.system, self.steps = adapter, embedder, system, steps
        self.cache = MemoryCache(budget_bytes)
        # Each system remembers the prompts it encoded itself, as if it ran in a worker of its own:
        # with one memory, the system that went first would encode every prompt for the others.
        encoders = (adapter.text_encoder, getattr(embedder, "encoder", None))
        self.text_memories = {id(e): (e, e.new_memory()) for e in encoders if hasattr(e, "remembering")}
        limits = adapter.limits
        self.namespace = Namespace.for_request(
            adapter.card,
            steps=steps,
            height=limits.default_side,
            width=limits.default_side,
            frames=limits.default_frames,
            guidance_scale=limits.default_guidance,
            embedder=embedder.name,
        ).key

    @contextlib.contextmanager
    def _attached(self) -> Iterator[BlockTokens]:
        """The system's intra-request cache, prompt memory and a block-token counter on the shared model."""
        transformer = self.adapter.transformer
        if self.system.intra is not None:
            transformer.enable_cache(self.system.intra.config(self.steps))
        counter = BlockTokens(transformer)
        try:
            with contextlib.ExitStack() as memories:
                for encoder, memory in self.text_memories.values():
                    memories.enter_context(encoder.remembering(memory))
                yield counter
        finally:
            counter.close()
            if self.system.intra is not None:
                transformer.disable_cache()

    def step(self, chunk: list[TraceItem], batch_size: int) -> tuple[list[Record], np.ndarray]:
        """One engine call on ``chunk``, a slice of a run of ``batch_size`` requests per call (timed
        inside; attaching the system is not)."""
        with self._attached() as counter:
            return self._chunk(chunk, counter, batch_size)

    def _lookup(
        self, items: list[TraceItem], requests: list[GenerationRequest], embeddings: np.ndarray
    ) -> tuple[list[ReusePlan], list[ReuseSource | None], list[MemoryEntry | None]]:
        plans, sources, entries = [], [], []
        for item, request, embedding in zip(items, requests, embeddings):
            match = self.cache.lookup(embedding, self.namespace, item.domain)
            plan, source, entry = ReusePlan(self.steps, reason="miss: empty cache"), None, None
            if match is not None:
                entry, similarity = match
                plan, source = prepare_reuse(
                    self.adapter, request, entry.run, similarity, self.system.policy, source_id=str(entry.id)
                )
            plans.append(plan)
            sources.append(source)
            entries.append(entry if plan.hit else None)
        return plans, sources, entries

    def _chunk(self, items: list[TraceItem], counter: BlockTokens, batch_size: int) -> tuple[list[Record], np.ndarray]:
        requests = [make_request(self.adapter, item, self.steps) for item in items]
        stats = DenoiseStats()
        tick = time.perf_counter()
        extra: dict[str, float] = {}
        if self.system.reuse is None:
            plans = [ReusePlan(self.steps, reason="no cache") for _ in items]
            frames = generate(self.adapter, requests, stats=stats)
        else:
            # The cache key's MiniLM forward is the one generation would run anyway (the encoder
            # remembers the prompt), so it is timed apart from the cache's own work.
            embeddings = self.embedder.embed([r.prompt for r in requests])
            extra["encode"] = time.perf_counter() - tick
            plans, sources, entries = self._lookup(items, requests, embeddings)
            extra["lookup"] = time.perf_counter() - tick - extra["encode"]
            out = generate_with_reuse(
                self.adapter,
                requests,
                plans,
                sources,
                tgaa=self.system.tgaa,
                capture=self.system.capture(self.steps),
                stats=stats,
            )
            frames, admit = out.frames, time.perf_counter()
            for item, plan, entry, captured, embedding in zip(items, plans, entries, out.captured, embeddings):
                if plan.hit:
                    self.cache.record_hit(entry, plan.steps_saved)
                else:  # a full-compute run is the cache's next source
                    self.cache.admit(captured, embedding, self.namespace, item.domain)
            extra["admit"] = time.perf_counter() - admit
        seconds = time.perf_counter() - tick
        frames = frames.cpu().numpy()
        share = 1 / len(items)
        stage_seconds = {**stats.stage_seconds, **extra}
        stage_seconds["other"] = max(0.0, seconds - sum(stage_seconds.values()))  # encoding, decoding, glue
        block_tokens = counter.take()
        records = []
        for item, plan, reading in zip(items, plans, read_clips(frames)):
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
                    cache_bytes=self.cache.nbytes,
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
