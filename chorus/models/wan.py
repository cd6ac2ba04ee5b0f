"""Adapters for diffusers' WanTransformer3DModel: ``WanBase``, what every Wan model shares, and
``WanAdapter``, the project's own models (``wan_folder.WanFolderAdapter`` serves diffusers folders).

Our own model (``latent_space: pixel``) denoises RGB pixels in [-1, 1] directly;
a Wan VAE model (``latent_space: wan_vae``) decodes through its VAE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from chorus.models.base import PromptEncoding
from chorus.models.catalog import ModelCard
from chorus.models.text import shared_minilm


class TextEncoder(Protocol):
    def encode(self, prompts: list[str]) -> PromptEncoding: ...


def vae_compression(vae) -> tuple[int, int]:
    """(temporal, spatial) factors of an ``AutoencoderKLWan``, read off its structure (Wan2.1's: 4, 8)."""
    cfg = vae.config
    spatial = 2 ** (len(cfg.dim_mult) - 1) * (getattr(cfg, "patch_size", None) or 1)
    return 2 ** sum(bool(t) for t in cfg.temperal_downsample), spatial


class WanBase:
    """What the shipped model and a diffusers Wan2.1 folder share: the card's identity, a Wan transformer
    run in ``dtype`` on fp32 latents, a text encoder, and (where there is one) a Wan VAE whose latents are
    de-normalised as WanPipeline does. Subclasses load ``transformer``, ``text_encoder`` and ``vae``."""

    transformer: WanTransformer3DModel
    vae: AutoencoderKLWan | None
    text_encoder: TextEncoder

    def __init__(self, card: ModelCard, device: str, dtype: torch.dtype) -> None:
        self.card, self.model_id, self.revision, self.limits = card, card.model_id, card.revision, card.limits
        self.device, self.dtype = device, dtype

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    def encode_prompts(self, prompts: list[str]) -> PromptEncoding:
        enc = self.text_encoder.encode(prompts)
        enc.states = enc.states.to(self.device, self.dtype)
        return enc

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        channels = self.transformer.config.in_channels
        if self.vae is None:
            return channels, num_frames, height, width
        temporal, spatial = vae_compression(self.vae)  # Wan2.1's VAE: 4, 8; ours may compress less
        return channels, (num_frames - 1) // temporal + 1, height // spatial, width // spatial

    def predict_velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, text_states: torch.Tensor
    ) -> torch.Tensor:
        """One forward of the transformer in ``dtype`` (latents are kept in fp32 between steps)."""
        return self.transformer(
            hidden_states=latents.to(self.dtype),
            timestep=timestep,
            encoder_hidden_states=text_states,
            return_dict=False,
        )[0]

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The VAE's output for denoised latents, de-normalised as WanPipeline does."""
        config = self.vae.config
        latents = latents.to(self.device, self.vae.dtype)
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(latents)
        inverse_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(latents)
        return self.vae.decode(latents / inverse_std + mean, return_dict=False)[0]


class WanAdapter(WanBase):
    def __init__(self, card: ModelCard, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        if card.text_encoder != "minilm":
            raise ValueError(f"text encoder {card.text_encoder!r} is not supported yet (only 'minilm')")
        super().__init__(card, device, dtype)
        self.transformer = WanTransformer3DModel.from_pretrained(card.path / "transformer", dtype=dtype)
        self.transformer.to(device).eval().requires_grad_(False)
        self.text_encoder = shared_minilm(card.text_max_tokens, device)
        self.vae = None
        if card.latent_space == "wan_vae":
            self.vae = AutoencoderKLWan.from_pretrained(card.path / "vae", dtype=dtype).to(device).eval()
        elif card.latent_space != "pixel":
            raise ValueError(f"unknown latent space {card.latent_space!r}")

    @classmethod
    def from_dir(cls, path: Path, device: str = "cpu") -> WanAdapter:
        return cls(ModelCard.load(path), device=device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.vae is not None:
            latents = self.vae_decode(latents)
        pixels = ((latents.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return pixels.permute(0, 2, 3, 4, 1).contiguous()  # (B, F, H, W, 3)
