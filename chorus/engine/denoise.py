"""Plain batched flow-matching sampling with classifier-free guidance.

This is the no-cache path and the reference the cached paths are tested
against. Each request keeps its own seed, so its video does not depend on
which other requests share its batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from diffusers.hooks import HookRegistry

from chorus.cache.namespace import RunShape
from chorus.engine.sampling import Trajectories
from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelLimits
from chorus.vocab import Stage


class Canceled(Exception):
    """Raised between steps when the step callback asks to stop."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    num_frames: int = 8
    height: int = 32
    width: int = 32
    num_inference_steps: int = 4
    guidance_scale: float = 3.0
    seed: int = 0
    lora: tuple[str, float] | None = None  # (adapter name, scale): set on the transformer for the batch, not here

    @classmethod
    def at_defaults(
        cls, limits: ModelLimits, prompt: str, seed: int, steps: int, guidance: float | None = None
    ) -> GenerationRequest:
        """A request of the model's default size and (unless given) guidance."""
        return cls(
            prompt=prompt,
            num_frames=limits.default_frames,
            height=limits.default_height,
            width=limits.default_width,
            num_inference_steps=steps,
            guidance_scale=limits.default_guidance if guidance is None else guidance,
            seed=seed,
        )

    @property
    def shape(self) -> RunShape:
        """Requests of equal shapes can be denoised in one batched forward."""
        return RunShape.of(self)


@dataclass
class DenoiseStats:
    """Collected during a run; exported elsewhere."""

    forwards: int = 0  # transformer calls (a CFG pair in one call counts once)
    tokens: int = 0  # video tokens fed through the transformer (cond + uncond), summed over calls
    denoise_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    forwards_per_step: list[int] = field(default_factory=list)
    tokens_per_step: list[int] = field(default_factory=list)  # 0 where every request skipped the step
    # wall time by stage (Stage.stage1: loading reused latents); a forward shared by requests in
    # different stages is split by row count
    stage_seconds: dict[Stage, float] = field(default_factory=dict)
    steps_skipped: int = 0  # request-steps not run at all (Stage 1), summed over requests

    def add_stage_time(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds


# on_step(step_done, total_steps) -> False to cancel
StepCallback = Callable[[int, int], bool]


def initial_noise(adapter: VideoModelAdapter, requests: list[GenerationRequest]) -> torch.Tensor:
    """The requests' initial noise (B, C, F, H, W), fp32: each seed's first draw (see chorus.engine.sampling)."""
    shape = adapter.latent_shape(requests[0].num_frames, requests[0].height, requests[0].width)
    return Trajectories(adapter, [r.seed for r in requests], shape, requests[0].num_inference_steps).noise


def guided_rows(scales: torch.Tensor) -> torch.Tensor:
    """Rows that run an unconditional pass: guidance above 1, as WanPipeline decides (at <= 1 it is skipped)."""
    return torch.nonzero(scales > 1).flatten()


def cfg_inputs(
    latents: torch.Tensor, text: torch.Tensor, negative: torch.Tensor, guided: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward's batch: every row conditional first, then the guided rows' unconditional pass."""
    return torch.cat([latents, latents[guided]]), torch.cat([text, negative[guided]])


def apply_guidance(out: torch.Tensor, scales: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance over a (B + G, ...) prediction laid out by ``cfg_inputs``."""
    batch = scales.shape[0]
    cond, uncond = out[:batch], out[batch:]
    if not len(guided):
        return cond
    velocity = cond.clone()
    scale = scales[guided].view(-1, *[1] * (out.ndim - 1))
    velocity[guided] = uncond + scale * (cond[guided] - uncond)
    return velocity


def guided_velocity(
    adapter: VideoModelAdapter,
    latents: torch.Tensor,
    t: torch.Tensor,
    text: torch.Tensor,
    negative: torch.Tensor,
    scales: torch.Tensor,
) -> tuple[torch.Tensor, int]:
    """Guided velocity of ``latents`` in one forward, and the number of rows that forward ran."""
    guided = guided_rows(scales)
    x, states = cfg_inputs(latents, text, negative, guided)
    return apply_guidance(adapter.predict_velocity(x, t.expand(len(x)), states), scales, guided), len(x)


def reset_intra_caches(transformer: torch.nn.Module) -> None:
    """Clear the state of diffusers' intra-request caches (FirstBlockCache, MagCache…) enabled with
    ``enable_cache``, so nothing carries over from the previous request."""
    if getattr(transformer, "is_cache_enabled", True):  # the reset walks every module (~0.5 ms a call)
        HookRegistry.check_if_exists_or_initialize(transformer).reset_stateful_hooks()


@contextmanager
def cache_step(transformer: torch.nn.Module, name: str, step: int, steps: int) -> Iterator[None]:
    """The cache context diffusers' intra-request caches key their state by: one ``name`` per stream of
    same-shaped forwards (their state compares a forward with the previous one of the same name)."""
    with transformer.cache_context(name, step_index=step, num_inference_steps=steps):
        yield


def token_count(adapter: VideoModelAdapter, latents: torch.Tensor) -> int:
    pt, ph, pw = adapter.patch_size
    _, _, f, h, w = latents.shape
    return (f // pt) * (h // ph) * (w // pw)


@torch.inference_mode()
def generate(
    adapter: VideoModelAdapter,
    requests: list[GenerationRequest],
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> torch.Tensor:
    """Denoise a batch of same-shape requests; returns uint8 frames (B, F, H, W, 3)."""
    if len({r.shape for r in requests}) != 1:
        raise ValueError("a batch must share frames, size and step count")
    stats = stats if stats is not None else DenoiseStats()
    steps = requests[0].num_inference_steps
    batch = len(requests)
    text = adapter.encode_prompts([r.prompt for r in requests] + [r.negative_prompt for r in requests]).states
    scales = torch.tensor([r.guidance_scale for r in requests], device=adapter.device, dtype=adapter.dtype)
    shape = adapter.latent_shape(requests[0].num_frames, requests[0].height, requests[0].width)
    paths = Trajectories(adapter, [r.seed for r in requests], shape, steps)
    latents = paths.noise.clone()
    reset_intra_caches(adapter.transformer)
    start = time.perf_counter()
    for i, t in enumerate(paths.timesteps):
        tick = time.perf_counter()
        with cache_step(adapter.transformer, "cfg", i, steps):
            velocity, rows = guided_velocity(adapter, latents, t.to(adapter.device), text[:batch], text[batch:], scales)
        latents = paths.step(list(range(batch)), i, velocity, latents)
        tokens = rows * token_count(adapter, latents)
        stats.forwards += 1
        stats.tokens += tokens
        stats.forwards_per_step.append(1)
        stats.tokens_per_step.append(tokens)
        stats.step_seconds.append(time.perf_counter() - tick)
        stats.add_stage_time(Stage.full, stats.step_seconds[-1])
        if on_step is not None and on_step(i + 1, steps) is False:
            raise Canceled
    stats.denoise_seconds += time.perf_counter() - start
    return adapter.decode(latents)
