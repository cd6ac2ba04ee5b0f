"""Endless training batches of procedural clips with random captions."""

from __future__ import annotations

import numpy as np
import torch

from chorus.data.captions import caption
from chorus.data.shapes import all_specs, render
from chorus.models.text import MiniLMTextEncoder


class CaptionStates:
    """Text states per caption, memoised: the caption space is finite and small."""

    def __init__(self, encoder: MiniLMTextEncoder) -> None:
        self.encoder = encoder
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = sorted({c for c in captions if c not in self._cache})
        if missing:
            for text, states in zip(missing, self.encoder.encode(missing).states):
                self._cache[text] = states
        return torch.stack([self._cache[c] for c in captions])


def clips_to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, F, H, W, 3) -> float (B, 3, F, H, W) in [-1, 1]."""
    return torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


class ClipStream:
    """Held-in specs only: held-out colour x shape pairs never reach training."""

    def __init__(self, rng: np.random.Generator, num_frames: int, side: int) -> None:
        self.rng = rng
        self.specs = all_specs(held_out=False)
        self.num_frames = num_frames
        self.side = side

    def batch(self, size: int) -> tuple[torch.Tensor, list[str]]:
        picks = self.rng.integers(len(self.specs), size=size)
        specs = [self.specs[i] for i in picks]
        clips = np.stack([render(s, self.num_frames, self.side, self.rng) for s in specs])
        return clips_to_tensor(clips), [caption(s, self.rng) for s in specs]


class LatentStream:
    """A ``ClipStream`` seen through a frozen ``AutoencoderKLWan``: the posterior means of its clips,
    normalised by the autoencoder's ``latents_mean`` / ``latents_std`` (the adapter's ``decode`` undoes it)."""

    def __init__(self, clips: ClipStream, vae) -> None:
        self.clips = clips
        self.vae = vae.requires_grad_(False).eval()
        self.mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)

    @torch.no_grad()
    def batch(self, size: int) -> tuple[torch.Tensor, list[str]]:
        x, captions = self.clips.batch(size)
        mean = self.vae.encode(x.to(self.vae.device)).latent_dist.mean
        return (mean - self.mean.to(mean)) / self.std.to(mean), captions


class LatentPool:
    """Replay of encoded clips for latent-space training: each batch encodes only ``fresh`` new clips into a
    pool of ``capacity`` (the oldest replaced first) and draws the batch from the pool, so the frozen
    autoencoder's encode (on CPU a third of a latent-space step: 0.9 s of 2.45 s at batch 24) runs for a
    fraction of the clips. Each clip is drawn about batch/fresh times before it is replaced. Until the pool
    holds a quarter of its capacity (a fresh or resumed run) whole batches are encoded, so early batches do
    not repeat a few clips."""

    def __init__(self, stream: LatentStream, rng: np.random.Generator, capacity: int, fresh: int) -> None:
        self.stream, self.rng, self.capacity, self.fresh = stream, rng, capacity, fresh
        self.latents: list[torch.Tensor] = []
        self.captions: list[str] = []
        self.oldest = 0

    def batch(self, size: int) -> tuple[torch.Tensor, list[str]]:
        filling = len(self.latents) < self.capacity // 4
        latents, captions = self.stream.batch(size if filling else self.fresh)
        for latent, text in zip(latents, captions):
            if len(self.latents) < self.capacity:
                self.latents.append(latent)
                self.captions.append(text)
            else:
                self.latents[self.oldest], self.captions[self.oldest] = latent, text
                self.oldest = (self.oldest + 1) % self.capacity
        if filling:
            return latents, captions
        picks = self.rng.integers(len(self.latents), size=size)
        return torch.stack([self.latents[i] for i in picks]), [self.captions[i] for i in picks]
