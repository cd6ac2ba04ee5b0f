"""The three-stage denoise loop of Chorus' inter-request reuse.

Per request, by its plan (``StagePlan``, decided in chorus.reuse.plan):
- Stage 1 (steps [0, k1)): not run; the request starts from the source's latent after k1 steps.
- Stage 2 (steps [k1, k1+k2)): only the region's tokens (and a halo around it, ``plan.halo``) run
  through the transformer (subset forward, true rotary positions, TGAA where on); with ``plan.context``
  their self-attention also reads the source's keys and values for every other token at the same step
  (chorus.engine.context). The region's result is kept; every other token, halo included, is taken from
  the source's latent after the same step.
- Stage 3 (the rest) and misses: full forwards, no reuse, TGAA off.
Requests in one call may follow different plans: at each step the full-forward rows share one batched
forward and the Stage-2 rows another, their regions padded to one length.

The target keeps its own seed: reused latents get the source's noise component swapped for the
target's (``x + sigma_k * (noise_target - noise_source)``, exact for a straight flow path, and a
no-op when the seeds are equal), so a seed variant is not a copy of the source. Each request steps
its own scheduler, restarted where its latent was reused (chorus.engine.sampling), so multistep
schedulers such as Wan2.1's UniPC never mix another trajectory's history into theirs. Rows at
guidance <= 1 run no unconditional pass.

diffusers' intra-request caches (FirstBlockCache, MagCache…) key their state by cache context; every
stream of same-shaped forwards (the full rows, each Stage-2 group) gets its own context name, so their
residuals are never compared across shapes, and their state is reset around each call. MagCache
counts forwards per context itself, so in a hit its ``mag_ratios`` schedule starts at the first step
the hit actually runs: still bounded by its threshold, but offset from the true step.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chorus.engine.attention_hooks import attention_hooks
from chorus.engine.capture import CaptureConfig, CapturedRun, CaptureHook, CaptureState, Grid
from chorus.engine.context import ContextHook, ContextState, RowContext, cell_log_sizes, covered_cells
from chorus.engine.denoise import (
    Canceled,
    DenoiseStats,
    GenerationRequest,
    StepCallback,
    apply_guidance,
    cache_step,
    cfg_inputs,
    guided_rows,
    guided_velocity,
    reset_intra_caches,
)
from chorus.engine.sampling import Trajectories
from chorus.engine.stages import RegionMask, StagePlan, dilate
from chorus.engine.subset_forward import patchify, subset_forward, token_grid, unpatchify
from chorus.engine.tgaa import TGAAConfig, TGAAHook, TGAAState
from chorus.models.base import VideoModelAdapter
from chorus.vocab import Stage


@dataclass
class ReuseSource:
    """What a hit reuses: the source's captured run, and for Stage 2 the region to recompute."""

    run: CapturedRun
    region: RegionMask | None = None

    def recomputed(self, halo: int) -> torch.Tensor:
        """The tokens a Stage-2 step runs: the region grown by ``halo`` tokens in space."""
        return dilate(self.region.mask, (0, halo, halo))


@dataclass
class ReuseOutput:
    frames: torch.Tensor  # uint8 (B, F, H, W, 3)
    latents: torch.Tensor  # final latents (B, C, F, H, W)
    captured: list[CapturedRun | None]  # per request: its capture (misses, when capture was asked for)


class _Sources:
    """The sources' latents on the engine's device, with the target's noise swapped in."""

    def __init__(
        self,
        adapter: VideoModelAdapter,
        requests: list[GenerationRequest],
        sources: list[ReuseSource | None],
        paths: Trajectories,
        renoise: bool,
    ) -> None:
        self.adapter, self.requests, self.sources, self.paths = adapter, requests, sources, paths
        self.swapped = [
            source is not None and renoise and source.run.seed != request.seed
            for request, source in zip(requests, sources)
        ]

    def latent(self, b: int, steps_done: int) -> torch.Tensor:
        latent = self.sources[b].run.latents[steps_done].to(self.adapter.device, torch.float32)
        if self.swapped[b]:  # the noise component after steps_done steps: draw steps_done of each seed
            paths = self.paths
            shift = paths.noise_at(self.requests[b].seed, steps_done) - paths.noise_at(
                self.sources[b].run.seed, steps_done
            )
            latent = latent + paths.sigmas[steps_done] * shift
        return latent


def _check(
    requests: list[GenerationRequest], plans: list[StagePlan], sources: list[ReuseSource | None], grid: Grid
) -> None:
    if len({r.shape for r in requests}) != 1:
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
        stage2_steps = range(plan.stage1, plan.stage1 + plan.stage2)
        if plan.stage2 and plan.context and not set(stage2_steps) <= source.run.context.keys():
            raise ValueError("a Stage-2 plan with context needs the source's context at each of its steps")


class _Loop:
    """One call's state: the batch's latents and text, the schedule, the attention hooks' states, the stats.
    A context manager: entering installs the hooks the call needs, leaving removes them, however it ends."""

    def __init__(
        self,
        adapter: VideoModelAdapter,
        requests: list[GenerationRequest],
        plans: list[StagePlan],
        sources: list[ReuseSource | None],
        stats: DenoiseStats,
        *,
        renoise: bool,
        tgaa: TGAAConfig,
        capture: CaptureConfig | None,
    ) -> None:
        self.adapter, self.plans, self.sources, self.stats = adapter, plans, sources, stats
        self.requests, self.batch, self.steps = requests, len(requests), requests[0].num_inference_steps
        self.text_enc = adapter.encode_prompts([r.prompt for r in requests] + [r.negative_prompt for r in requests])
        self.scales = torch.tensor([r.guidance_scale for r in requests], device=adapter.device, dtype=adapter.dtype)
        shape = adapter.latent_shape(requests[0].num_frames, requests[0].height, requests[0].width)
        self.paths = Trajectories(adapter, [r.seed for r in requests], shape, self.steps)
        self.grid = token_grid(adapter.transformer, self.paths.noise)
        _check(requests, plans, sources, self.grid)
        start = time.perf_counter()
        self.reused = _Sources(adapter, requests, sources, self.paths, renoise)
        self.latents = self.paths.noise.clone()
        for b, plan in enumerate(plans):
            if plan.stage1:  # Stage 1: start from the source's latent after k1 steps
                self.latents[b] = self.reused.latent(b, plan.stage1)
                self.paths.start_at(b, plan.stage1)
                stats.steps_skipped += plan.stage1
        stats.add_stage_time(Stage.stage1, time.perf_counter() - start)
        # The hooks' states: TGAA where a Stage 2 amplifies, capture where a miss is recorded, context where a
        # Stage 2 runs or a capture stores the self-attention's keys and values.
        stage2 = any(plan.stage2 for plan in plans)
        self.capturing = [capture is not None and not plan.hit for plan in plans]
        self.tgaa = TGAAState(tgaa) if tgaa.alpha != 1.0 and stage2 else None
        blocks = len(adapter.transformer.blocks)
        self.capture = CaptureState(capture, blocks) if any(self.capturing) else None
        self.context = (
            ContextState(capture.context_stride, capture.latent_dtype) if self.capture is not None else ContextState()
        )
        self.hooks = [(TGAAHook, self.tgaa, tgaa.layers)] if self.tgaa is not None else []
        if self.capture is not None:
            self.hooks.append((CaptureHook, self.capture, self.capture.layers))
        if stage2 or (self.capture is not None and capture.context_steps != ()):
            self.hooks.append((ContextHook, self.context, None))
        self._installed = ExitStack()

    def __enter__(self) -> _Loop:
        reset_intra_caches(self.adapter.transformer)
        self._installed.enter_context(attention_hooks(self.adapter.transformer, self.hooks))
        return self

    def __exit__(self, *exc: object) -> None:
        self._installed.close()
        reset_intra_caches(self.adapter.transformer)

    def _text(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows' prompt states and negative prompt states."""
        states = self.text_enc.states
        return states[rows], states[[self.batch + b for b in rows]]

    def full_step(self, i: int, t: torch.Tensor, rows: list[int], stages: list[Stage]) -> int:
        """One batched forward for the rows that run in full (misses, Stage 3); returns tokens processed."""
        tick = time.perf_counter()
        if self.capture is not None:
            self.capture.begin_forward(i, [b if self.capturing[b] else None for b in rows])
            if self.capture.config.records_context(i):
                owners = [(b, p) if self.capturing[b] else None for b, p in self._passes(rows)]
                self.context.begin_record(i, self.grid, owners)
        with cache_step(self.adapter.transformer, f"full{rows}", i, self.steps):
            velocity, ran = guided_velocity(self.adapter, self.latents[rows], t, *self._text(rows), self.scales[rows])
        if self.capture is not None:
            self.capture.end_forward()
            self.context.reset()
        self.latents[rows] = self.paths.step(rows, i, velocity, self.latents[rows])
        share = (time.perf_counter() - tick) / len(rows)
        for b in rows:
            self.stats.add_stage_time(stages[b], share)
        return ran * self.grid[0] * self.grid[1] * self.grid[2]

    def _passes(self, rows: list[int]) -> list[tuple[int, int]]:
        """(request, pass) of each input row of a forward over ``rows``: 0 conditional, 1 unconditional,
        in the order ``cfg_inputs`` lays them out."""
        guided = guided_rows(self.scales[rows]).tolist()
        return [(b, 0) for b in rows] + [(rows[g], 1) for g in guided]

    def _row_context(self, i: int, b: int, pass_: int, recomputed: torch.Tensor) -> RowContext | None:
        """The source's keys and values at step ``i`` for a Stage-2 row, the recomputed tokens' cells left out."""
        run = self.sources[b].run
        if not self.plans[b].context:
            return None
        context = run.context[i][pass_].to(self.adapter.device, self.adapter.dtype)  # (layers, 2, cells, inner)
        bias = cell_log_sizes(self.grid, run.context_stride).to(self.adapter.device)
        bias = bias.masked_fill(covered_cells(recomputed, run.context_stride).to(bias.device), float("-inf"))
        return RowContext(keys=context[:, 0], values=context[:, 1], bias=bias)

    def stage2_step(self, i: int, t: torch.Tensor, rows: list[int]) -> int:
        """Stage 2 for ``rows``: one subset forward on each row's recomputed tokens (padded to one length),
        their region's result kept and every other token taken from the source's latent after this step;
        returns tokens processed."""
        tick = time.perf_counter()
        adapter, patch, device = self.adapter, self.adapter.patch_size, self.adapter.device
        recomputed = {b: self.sources[b].recomputed(self.plans[b].halo) for b in rows}
        index = {b: recomputed[b].flatten().nonzero().squeeze(1).to(device) for b in rows}
        width = max(len(idx) for idx in index.values())
        passes = self._passes(rows)
        padded = torch.stack([F.pad(index[b], (0, width - len(index[b])), value=int(index[b][-1])) for b, _ in passes])
        valid = torch.stack([torch.arange(width, device=device) < len(index[b]) for b, _ in passes])
        self.context.begin_stage2(valid, [self._row_context(i, b, p, recomputed[b]) for b, p in passes])
        x, scales = self.latents[rows], self.scales[rows]
        guided = guided_rows(scales)
        inputs, states = cfg_inputs(x, *self._text(rows), guided)
        if self.tgaa is not None:
            self.tgaa.set(
                [self.plans[b].amplified_tokens for b in rows],
                [self.tgaa.config.alpha_at(i - self.plans[b].stage1) for b in rows],
            )
        with cache_step(adapter.transformer, f"stage2{rows}", i, self.steps):
            out = subset_forward(adapter.transformer, inputs, t.expand(len(inputs)), states, padded)
        self.context.reset()
        if self.tgaa is not None:
            self.tgaa.reset()
        guided_out = apply_guidance(out, scales, guided)
        # The schedulers step whole latents; outside the recomputed tokens the velocity is a placeholder
        # (their updates are elementwise) and the result there is replaced by the source's latent.
        velocity = patchify(torch.zeros_like(x), patch)
        for r, b in enumerate(rows):
            velocity[r, index[b]] = guided_out[r, : len(index[b])].to(velocity.dtype)
        stepped = patchify(self.paths.step(rows, i, unpatchify(velocity, self.grid, patch), x), patch)
        merged = patchify(torch.stack([self.reused.latent(b, i + 1) for b in rows]), patch)
        for r, b in enumerate(rows):
            region = self.sources[b].region.index.to(device)
            merged[r, region] = stepped[r, region]
        self.latents[rows] = unpatchify(merged, self.grid, patch)
        self.paths.borrowed(rows)
        self.stats.add_stage_time(Stage.stage2, time.perf_counter() - tick)
        return int(valid.sum())

    def run(self, on_step: StepCallback | None) -> None:
        for i, t in enumerate(self.paths.timesteps):
            tick = time.perf_counter()
            t = t.to(self.adapter.device)
            stages = [plan.stage_of(i) for plan in self.plans]
            calls: list[int] = []  # tokens per transformer call
            full = [b for b in range(self.batch) if stages[b].computed_in_full]
            if full:
                calls.append(self.full_step(i, t, full, stages))
            if stage2 := [b for b in range(self.batch) if stages[b] is Stage.stage2]:
                calls.append(self.stage2_step(i, t, stage2))
            if self.capture is not None:
                for b in range(self.batch):
                    if self.capturing[b]:
                        self.capture.add_latent(b, i + 1, self.latents[b])
            self.stats.forwards_per_step.append(len(calls))
            self.stats.tokens_per_step.append(sum(calls))
            self.stats.step_seconds.append(time.perf_counter() - tick)
            if on_step is not None and on_step(i + 1, self.steps) is False:
                raise Canceled

    def captured_run(self, b: int) -> CapturedRun:
        request = self.requests[b]
        maps, map_grid = self.capture.maps(b, self.grid, len(self.text_enc.token_ids[b]))
        previews, preview_grid = self.capture.previews(b, self.grid)
        return CapturedRun(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            num_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            token_ids=list(self.text_enc.token_ids[b]),
            token_grid=self.grid,
            map_grid=map_grid,
            latents=dict(self.capture.latents[b]),
            attn_maps=maps,
            context=self.context.context(b),
            context_stride=self.context.stride,
            previews=previews,
            preview_layer=self.capture.preview_layer if previews else None,
            preview_grid=preview_grid if previews else None,
        )


@torch.inference_mode()
def generate_with_reuse(
    adapter: VideoModelAdapter,
    requests: list[GenerationRequest],
    plans: list[StagePlan] | None = None,
    sources: list[ReuseSource | None] | None = None,
    *,
    tgaa: TGAAConfig | None = None,
    capture: CaptureConfig | None = None,
    renoise: bool = True,
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> ReuseOutput:
    """Denoise same-shape requests, each by its plan (default: all misses). ``tgaa``: amplification in
    Stage 2 (default ``TGAAConfig()``: off). ``capture``: record the misses' trajectories into ``captured``.
    ``renoise``: swap the sources' noise for the targets' seeds."""
    steps = requests[0].num_inference_steps
    plans = plans or [StagePlan(steps) for _ in requests]
    sources = sources or [None] * len(requests)
    stats = stats if stats is not None else DenoiseStats()
    loop = _Loop(adapter, requests, plans, sources, stats, renoise=renoise, tgaa=tgaa or TGAAConfig(), capture=capture)
    start = time.perf_counter()
    with loop:
        loop.run(on_step)
    stats.denoise_seconds += time.perf_counter() - start
    captured = [loop.captured_run(b) if loop.capturing[b] else None for b in range(len(requests))]
    return ReuseOutput(frames=adapter.decode(loop.latents), latents=loop.latents, captured=captured)


def generate(
    adapter: VideoModelAdapter,
    requests: list[GenerationRequest],
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> torch.Tensor:
    """Plain generation: the staged loop with no plans (every step in full); uint8 frames (B, F, H, W, 3)."""
    return generate_with_reuse(adapter, requests, on_step=on_step, stats=stats).frames
