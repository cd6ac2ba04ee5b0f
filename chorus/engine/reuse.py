"""The three-stage denoise loop of Chorus' inter-request reuse.

Per request, by its plan (see plan.py):
- Stage 1 (steps [0, k1)): not run; the request starts from the source's latent after k1 steps.
- Stage 2 (steps [k1, k1+k2)): only the region's tokens run through the transformer (subset forward,
  true rotary positions, TGAA on); every other token is taken from the source's latent after the
  same step.
- Stage 3 (the rest) and misses: full forwards, no reuse, TGAA off.
Requests in one call may follow different plans: at each step the full-forward rows share one batched
forward, Stage-2 rows one subset forward per distinct region.

The target keeps its own seed: reused latents get the source's noise component swapped for the
target's (``x + sigma_k * (noise_target - noise_source)``, exact for a straight flow path, and a
no-op when the seeds are equal), so a seed variant is not a copy of the source.

diffusers' intra-request caches (FirstBlockCache, MagCache…) key their state by cache context; every
stream of same-shaped forwards (the full rows, each Stage-2 group) gets its own context name, so their
residuals are never compared across shapes, and their state is reset around each call.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, replace

import torch

from chorus.engine.capture import CaptureConfig, CapturedRun, CaptureState, apply_capture, remove_capture
from chorus.engine.denoise import (
    Canceled,
    DenoiseStats,
    GenerationRequest,
    StepCallback,
    apply_guidance,
    cache_step,
    guided_velocity,
    initial_noise,
    make_scheduler,
    reset_intra_caches,
)
from chorus.engine.plan import ReusePlan
from chorus.engine.region import RegionMask
from chorus.engine.subset_forward import patchify, subset_forward, token_grid, unpatchify
from chorus.engine.tgaa import TGAAConfig, TGAAState, apply_tgaa, remove_tgaa
from chorus.models.base import VideoModelAdapter


@dataclass
class ReuseSource:
    """What a hit reuses: the source's captured run, and for Stage 2 the region to recompute."""

    run: CapturedRun
    region: RegionMask | None = None


@dataclass
class ReuseOutput:
    frames: torch.Tensor  # uint8 (B, F, H, W, 3)
    latents: torch.Tensor  # final latents (B, C, F, H, W)
    captured: list[CapturedRun | None]  # per request: its capture (misses, when capture was asked for)


def euler_step(sample: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor):
    """FlowMatchEulerDiscreteScheduler.step's deterministic update, op for op, for any subset of a batch."""
    return (sample.to(torch.float32) + (sigma_next - sigma) * velocity).to(velocity.dtype)


class _Sources:
    """The sources' latents on the engine's device, with the target's noise swapped in."""

    def __init__(
        self,
        adapter: VideoModelAdapter,
        requests: list[GenerationRequest],
        sources: list[ReuseSource | None],
        noise: torch.Tensor,
        sigmas: torch.Tensor,
        renoise: bool,
    ) -> None:
        self.adapter, self.sources, self.sigmas = adapter, sources, sigmas
        self.noise_shift: dict[int, torch.Tensor] = {}
        for b, (request, source) in enumerate(zip(requests, sources)):
            if source is not None and renoise and source.run.seed != request.seed:
                source_noise = initial_noise(adapter, [replace(request, seed=source.run.seed)])[0]
                self.noise_shift[b] = noise[b] - source_noise

    def latent(self, b: int, steps_done: int) -> torch.Tensor:
        latent = self.sources[b].run.latents[steps_done].to(self.adapter.device, self.adapter.dtype)
        if b in self.noise_shift:
            latent = latent + self.sigmas[steps_done] * self.noise_shift[b]
        return latent


def _check(requests: list[GenerationRequest], plans: list[ReusePlan], sources: list[ReuseSource | None], grid):
    if len({r.shape_key for r in requests}) != 1:
        raise ValueError("a batch must share frames, size and step count")
    if not len(requests) == len(plans) == len(sources):
        raise ValueError("one plan and one source (or None) per request")
    steps = requests[0].num_inference_steps
    for plan, source in zip(plans, sources):
        if plan.num_steps != steps:
            raise ValueError(f"plan for {plan.num_steps} steps in a {steps}-step batch")
        if plan.hit and (source is None or tuple(source.run.token_grid) != grid):
            raise ValueError("a hit needs a source captured on the same token grid")
        if plan.stage2 and (source.region is None or not source.region.mask.any()):
            raise ValueError("a Stage-2 plan needs a non-empty region")


@torch.inference_mode()
def generate_with_reuse(
    adapter: VideoModelAdapter,
    requests: list[GenerationRequest],
    plans: list[ReusePlan] | None = None,
    sources: list[ReuseSource | None] | None = None,
    *,
    tgaa: TGAAConfig | None = None,
    capture: CaptureConfig | None = None,
    renoise: bool = True,
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> ReuseOutput:
    """Denoise same-shape requests, each by its plan (default: all misses). ``tgaa``: amplification in
    Stage 2 (default ``TGAAConfig()``). ``capture``: record the misses' trajectories (``captured``)."""
    steps = requests[0].num_inference_steps
    plans = plans or [ReusePlan(steps) for _ in requests]
    sources = sources or [None] * len(requests)
    tgaa = tgaa or TGAAConfig()
    stats = stats if stats is not None else DenoiseStats()
    transformer, patch, batch = adapter.transformer, adapter.patch_size, len(requests)

    text_enc = adapter.encode_prompts([r.prompt for r in requests] + [r.negative_prompt for r in requests])
    text = text_enc.states
    scales = torch.tensor([r.guidance_scale for r in requests], device=adapter.device, dtype=adapter.dtype)
    noise = initial_noise(adapter, requests)
    grid = token_grid(transformer, noise)
    _check(requests, plans, sources, grid)
    tokens = grid[0] * grid[1] * grid[2]
    scheduler = make_scheduler(adapter, steps)
    sigmas = scheduler.sigmas

    start = time.perf_counter()
    reused = _Sources(adapter, requests, sources, noise, sigmas, renoise)
    latents = noise.clone()
    for b, plan in enumerate(plans):
        if plan.stage1:
            latents[b] = reused.latent(b, plan.stage1)
            stats.steps_skipped += plan.stage1
    stats.add_stage_time("stage1", time.perf_counter() - start)

    capturing = [capture is not None and not plan.hit for plan in plans]
    tgaa_state: TGAAState | None = None
    capture_state: CaptureState | None = None
    reset_intra_caches(transformer)
    try:
        if tgaa.alpha != 1.0 and any(p.stage2 for p in plans):
            tgaa_state = apply_tgaa(transformer, tgaa)
        if any(capturing):
            capture_state = apply_capture(transformer, capture)
        for i, t in enumerate(scheduler.timesteps):
            tick = time.perf_counter()
            t = t.to(adapter.device)
            stages = [plan.stage_of(i) for plan in plans]
            forwards = step_tokens = 0

            full = [b for b in range(batch) if stages[b] in ("full", "stage3")]
            if full:
                if capture_state is not None:
                    capture_state.begin_forward(i, [b if capturing[b] else None for b in full])
                rows_text = text[full + [batch + b for b in full]]
                with cache_step(transformer, f"full{full}", i, steps):
                    velocity = guided_velocity(adapter, latents[full], t, rows_text, scales[full])
                if capture_state is not None:
                    capture_state.end_forward()
                latents[full] = euler_step(latents[full], velocity, sigmas[i], sigmas[i + 1])
                forwards, step_tokens = forwards + 1, step_tokens + 2 * len(full) * tokens
                share = (time.perf_counter() - tick) / len(full)
                for b in full:
                    stats.add_stage_time(stages[b], share)

            for rows, region in _region_groups(stages, sources).items():
                tock = time.perf_counter()
                index = region.index.to(adapter.device)
                x = latents[list(rows)]
                if tgaa_state is not None:
                    tgaa_state.set([plans[b].diff.target_tokens if plans[b].diff else () for b in rows])
                with cache_step(transformer, f"region{list(rows)}", i, steps):
                    out = subset_forward(
                        transformer,
                        torch.cat([x, x]).to(adapter.dtype),
                        t.expand(2 * len(rows)),
                        text[list(rows) + [batch + b for b in rows]],
                        index,
                    )
                if tgaa_state is not None:
                    tgaa_state.reset()
                x_tokens = patchify(x, patch)
                merged = patchify(torch.stack([reused.latent(b, i + 1) for b in rows]), patch)
                velocity = apply_guidance(out, scales[list(rows)])
                merged[:, index] = euler_step(x_tokens[:, index], velocity, sigmas[i], sigmas[i + 1])
                latents[list(rows)] = unpatchify(merged, grid, patch)
                forwards, step_tokens = forwards + 1, step_tokens + 2 * len(rows) * len(index)
                stats.add_stage_time("stage2", time.perf_counter() - tock)

            if capture_state is not None:
                for b in range(batch):
                    if capturing[b]:
                        capture_state.add_latent(b, i + 1, latents[b])
            stats.forwards += forwards
            stats.tokens += step_tokens
            stats.forwards_per_step.append(forwards)
            stats.tokens_per_step.append(step_tokens)
            stats.step_seconds.append(time.perf_counter() - tick)
            if on_step is not None and on_step(i + 1, steps) is False:
                raise Canceled
        captured = [
            _captured_run(capture_state, b, requests[b], text_enc.token_ids[b], grid) if capturing[b] else None
            for b in range(batch)
        ]
    finally:
        if tgaa_state is not None:
            remove_tgaa(transformer)
        if capture_state is not None:
            remove_capture(transformer)
        reset_intra_caches(transformer)
    stats.denoise_seconds += time.perf_counter() - start
    return ReuseOutput(frames=adapter.decode(latents), latents=latents, captured=captured)


def _region_groups(stages: list[str], sources: list[ReuseSource | None]) -> dict[tuple[int, ...], RegionMask]:
    """Stage-2 rows batched together when their regions are equal; otherwise one forward each."""
    groups: dict[bytes, list[int]] = {}
    for b, stage in enumerate(stages):
        if stage == "stage2":
            key = sources[b].region.mask.cpu().numpy().tobytes()
            groups.setdefault(key, []).append(b)
    return {tuple(rows): sources[rows[0]].region for rows in groups.values()}


def _captured_run(
    state: CaptureState, key: Hashable, request: GenerationRequest, token_ids: list[int], grid
) -> CapturedRun:
    maps, map_grid = state.maps(key, grid)
    return CapturedRun(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        num_steps=request.num_inference_steps,
        guidance_scale=request.guidance_scale,
        token_ids=list(token_ids),
        token_grid=grid,
        map_grid=map_grid,
        latents=dict(state.latents[key]),
        attn_maps=maps,
    )
