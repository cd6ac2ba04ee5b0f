"""What a cache entry must hold, and how many bytes that is, computed from shapes alone (no weights).

A plan reads few of a run's steps: a replay the final latent, a seed variant the latent after its Stage 1,
an edit the latents of its Stage-1 start and Stage-2 steps, and the region of an edit comes from the maps
averaged over the stored steps. ``ReusePolicy.capture_for`` stores exactly those (maps at two Stage-2 steps),
so an entry's size follows the policy, not the step count. Maps are averaged over heads and layers and
keep only the prompt's own token columns, so model size (1.3B vs 14B: layers and heads) does not change
an entry: the latent's shape (VAE channels and factors) and the token grid (patch, pooling) do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chorus.engine.capture import CaptureConfig

FP16 = 2


@dataclass(frozen=True)
class LatentSpace:
    """What fixes an entry's tensor shapes: the VAE's channels and factors, the transformer's patch."""

    channels: int = 16
    temporal: int = 4
    spatial: int = 8
    patch: tuple[int, int, int] = (1, 2, 2)

    def latent(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return self.channels, (frames - 1) // self.temporal + 1, height // self.spatial, width // self.spatial

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        _, f, h, w = self.latent(frames, height, width)
        return f // self.patch[0], h // self.patch[1], w // self.patch[2]


# Wan2.1's diffusers configs: both sizes share the VAE (z_dim 16, 4x8x8) and the (1, 2, 2) patch; they
# differ in layers (30, 40), heads (12, 40) and width (1536, 5120), which pooled maps do not keep.
WAN21 = {"Wan2.1-T2V-1.3B": LatentSpace(), "Wan2.1-T2V-14B": LatentSpace()}


def wan_sigmas(steps: int, shift: float = 3.0) -> list[float]:
    """Wan2.1's sampling grid (its UniPC with flow sigmas): sigma = shift s / (1 + (shift - 1) s), s evenly
    from 1 to 0; what ``ReusePolicy.capture_for`` reads the steps of its stages off."""
    return [shift * s / (1 + (shift - 1) * s) for s in (1 - i / steps for i in range(steps + 1))]


@dataclass(frozen=True)
class EntrySize:
    latent_bytes: int
    map_bytes: int

    @property
    def total(self) -> int:
        return self.latent_bytes + self.map_bytes


def entry_size(
    space: LatentSpace, frames: int, height: int, width: int, config: CaptureConfig, text_tokens: int
) -> EntrySize:
    """Tensor bytes of one entry (the safetensors header adds about a kilobyte)."""
    latent = math.prod(space.latent(frames, height, width)) * config.latent_dtype.itemsize
    grid = space.token_grid(frames, height, width)
    pooled = math.prod(math.ceil(n / s) for n, s in zip(grid, config.map_stride))
    return EntrySize(len(config.latent_steps) * latent, len(config.map_steps) * pooled * text_tokens * FP16)
