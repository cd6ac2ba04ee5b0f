"""The model adapter interface the engine denoises with.

An adapter hides what differs between video DiTs (latent space, text encoder,
patching) behind four operations: encode prompts, predict a flow velocity for
a batch of latents, decode latents to frames, and describe its input limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from chorus.models.catalog import ModelCard, ModelLimits

if TYPE_CHECKING:
    from chorus.models.encodings import EncodingCache


@dataclass
class PromptEncoding:
    """Text-encoder output for a batch of prompts."""

    states: torch.Tensor  # (batch, tokens, text_dim): what cross-attention reads
    token_ids: list[list[int]]  # tokenizer ids per prompt (unpadded), for prompt diffs


class VideoModelAdapter(Protocol):
    """What the engine needs from a video diffusion transformer."""

    model_id: str
    revision: str
    card: ModelCard
    limits: ModelLimits
    transformer: torch.nn.Module
    device: str
    dtype: torch.dtype

    @property
    def patch_size(self) -> tuple[int, int, int]: ...

    encodings: EncodingCache  # the LRU encode_prompts goes through (chorus.models.encodings)

    def encode_prompts(self, prompts: list[str]) -> PromptEncoding: ...

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, latent_frames, latent_height, latent_width) for one video."""
        ...

    def predict_velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, text_states: torch.Tensor
    ) -> torch.Tensor:
        """One transformer forward: flow velocity for ``latents`` at ``timestep`` (0..1000)."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (batch, C, F, H, W) to uint8 frames (batch, F, H, W, 3)."""
        ...
