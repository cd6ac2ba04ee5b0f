"""What every denoise shares: the request, the run's stats, classifier-free guidance, cancellation and
the intra-request caches' contexts. The loop itself is ``staged.py`` (plain generation is it with no
plans). Each request keeps its own seed, so its video does not depend on which other requests share its
batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from diffusers.hooks import HookRegistry
from diffusers.hooks.mag_cache import MagCacheHeadHook

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelLimits
from chorus.namespace import RunShape
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

    denoise_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    forwards_per_step: list[int] = field(default_factory=list)  # transformer calls (a CFG pair counts once)
    tokens_per_step: list[int] = field(default_factory=list)  # video tokens fed (cond + uncond); 0: all skipped
    # wall time by stage (Stage.stage1: loading reused latents); a forward shared by requests in
    # different stages is split by row count
    stage_seconds: dict[Stage, float] = field(default_factory=dict)
    steps_skipped: int = 0  # request-steps not run at all (Stage 1), summed over requests

    @property
    def forwards(self) -> int:
        return sum(self.forwards_per_step)

    @property
    def tokens(self) -> int:
        return sum(self.tokens_per_step)

    def add_stage_time(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds


# on_step(step_done, total_steps) -> False to cancel
StepCallback = Callable[[int, int], bool]


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
        _align_mag_cache(transformer, step)
        yield


def _align_mag_cache(transformer: torch.nn.Module, step: int) -> None:
    """Set MagCache's step counter to the true step. MagCache counts the forwards of a context itself, so a
    hit that starts at step k1 (Stage 1) or a stream that runs only some steps (Stage 2, repair) would read
    its residual-magnitude schedule ``mag_ratios`` from step 0; the context's step is the true one."""
    if not getattr(transformer, "is_cache_enabled", True):
        return
    # MagCache hooks the head of the first block list it finds among the transformer's children
    # (diffusers' apply_mag_cache): looking there alone, not at every module, costs ~3 us a step, not ~0.3 ms.
    heads = (blocks[0] for blocks in transformer.children() if isinstance(blocks, torch.nn.ModuleList) and blocks)
    for head in heads:
        registry = getattr(head, "_diffusers_hook", None)
        for hook in registry.hooks.values() if registry is not None else ():
            if isinstance(hook, MagCacheHeadHook):
                hook.state_manager.get_state().step_index = step
