"""What a cache entry must hold, and how many bytes that is, computed from shapes alone (no weights).

A plan reads few of a run's steps: a replay the final latent, a seed variant the latent after its Stage 1,
an edit the latents of its Stage-1 start and Stage-2 steps, and the region of an edit comes from the maps
averaged over the stored steps. ``ReusePolicy.capture_for`` stores exactly those (maps at two Stage-2 steps),
so an entry's size follows the policy, not the step count. Maps are averaged over heads and layers and
keep only the prompt's own token columns, so model size (1.3B vs 14B: layers and heads) does not change
an entry: the latent's shape (VAE channels and factors) and the token grid (patch, pooling) do. Stage 2's
material is the exception: the context (every block's keys and values of both CFG passes at each step a
Stage 2 may run) and one block's cross-attention queries (the target's preview) grow with layers and
width; ``fit_stage2`` pools them as finely as a budget allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from chorus.engine.capture import CaptureConfig, Grid, pooled_grid

FP16 = 2


@dataclass(frozen=True)
class LatentSpace:
    """What fixes an entry's tensor shapes: the VAE's channels and factors, the transformer's patch."""

    channels: int = 16
    temporal: int = 4
    spatial: int = 8
    patch: tuple[int, int, int] = (1, 2, 2)
    layers: int = 30  # transformer blocks and their attention width: what Stage 2's context scales with
    width: int = 1536

    def latent(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return self.channels, (frames - 1) // self.temporal + 1, height // self.spatial, width // self.spatial

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        _, f, h, w = self.latent(frames, height, width)
        return f // self.patch[0], h // self.patch[1], w // self.patch[2]


# Wan2.1's diffusers configs: both sizes share the VAE (z_dim 16, 4x8x8) and the (1, 2, 2) patch; they
# differ in layers (30, 40), heads (12, 40) and width (1536, 5120), which pooled maps do not keep.
WAN21 = {"Wan2.1-T2V-1.3B": LatentSpace(), "Wan2.1-T2V-14B": LatentSpace(layers=40, width=5120)}
CONTEXT_STRIDES: tuple[Grid, ...] = ((1, 1, 1), (1, 2, 2), (1, 4, 4), (2, 8, 8))  # finest first


def wan_sigmas(steps: int, shift: float = 3.0) -> list[float]:
    """Wan2.1's sampling grid (its UniPC with flow sigmas): sigma = shift s / (1 + (shift - 1) s), s evenly
    from 1 to 0; what ``ReusePolicy.capture_for`` reads the steps of its stages off."""
    return [shift * s / (1 + (shift - 1) * s) for s in (1 - i / steps for i in range(steps + 1))]


@dataclass(frozen=True)
class EntrySize:
    latent_bytes: int
    map_bytes: int
    stage2_bytes: int = 0  # the context and the target's preview queries

    @property
    def total(self) -> int:
        return self.latent_bytes + self.map_bytes + self.stage2_bytes


def context_bytes(layers: int, width: int, grid: Grid, config: CaptureConfig, passes: int = 2) -> int:
    """Bytes of the keys and values ``config`` stores for Stage 2 of a ``layers``-block transformer of
    attention ``width`` on a ``grid`` of tokens."""
    cells = math.prod(pooled_grid(grid, config.context_stride))
    return len(config.context_steps or ()) * passes * layers * 2 * cells * width * config.latent_dtype.itemsize


def preview_bytes(width: int, grid: Grid, config: CaptureConfig) -> int:
    """Bytes of the one block's queries ``config`` stores for the target's preview maps."""
    if not config.map_steps or config.preview_stride == ():
        return 0
    stride = config.map_stride if config.preview_stride is None else config.preview_stride
    return math.prod(pooled_grid(grid, stride)) * width * FP16


def fit_stage2(
    layers: int, width: int, grid: Grid, config: CaptureConfig, budget: float, passes: int = 2
) -> CaptureConfig:
    """``config`` with Stage 2's material pooled to fit ``budget`` bytes: the target's preview first (the
    map stride, else coarser in space, else none), then the context in what is left (the finest of
    ``CONTEXT_STRIDES`` that fits, else none: Stage 2 then runs context-free)."""
    h, w = config.map_stride[1:]
    for stride in [(config.map_stride[0], h * k, w * k) for k in (1, 2, 4)] + [()]:
        config = replace(config, preview_stride=stride)
        if preview_bytes(width, grid, config) <= budget:
            break
    left = budget - preview_bytes(width, grid, config)
    for stride in CONTEXT_STRIDES:
        if context_bytes(layers, width, grid, replace(config, context_stride=stride), passes) <= left:
            return replace(config, context_stride=stride)
    return replace(config, context_steps=())


def entry_size(
    space: LatentSpace, frames: int, height: int, width: int, config: CaptureConfig, text_tokens: int, passes: int = 2
) -> EntrySize:
    """Tensor bytes of one entry (the safetensors header adds about a kilobyte); ``passes``: 2 with guidance."""
    latent = math.prod(space.latent(frames, height, width)) * config.latent_dtype.itemsize
    grid = space.token_grid(frames, height, width)
    pooled = math.prod(pooled_grid(grid, config.map_stride))
    return EntrySize(
        len(config.latent_steps) * latent,
        len(config.map_steps) * pooled * text_tokens * FP16,
        context_bytes(space.layers, space.width, grid, config, passes) + preview_bytes(space.width, grid, config),
    )
