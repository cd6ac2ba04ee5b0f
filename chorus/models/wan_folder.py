"""Adapter for a Wan2.1 folder in diffusers layout, served as ``WanPipeline`` runs it.

The components are loaded by ``WanPipeline.from_pretrained`` itself (transformer and UMT5 in the asked
dtype, the VAE in fp32 as Wan's authors recommend), so prompts are encoded by the pipeline's own
``encode_prompt`` (its prompt cleaning, 512 tokens, states zeroed past each prompt's length) and frames
are decoded by its VAE and video processor. A card's LoRA is loaded with ``load_lora_weights`` and fused
into the transformer, so serving it costs nothing per step.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan, WanPipeline
from diffusers.pipelines.wan.pipeline_wan import prompt_clean

from chorus.models.base import PromptEncoding
from chorus.models.catalog import ModelCard
from chorus.models.encodings import encoding_cache_for
from chorus.models.wan import wan_velocity


class UMT5Prompts:
    """The folder's tokenizer and UMT5 encoder, called through the pipeline; ``tokenizer``, ``max_tokens``
    and ``clean`` are what the prompt diff needs to find a word's token positions."""

    def __init__(self, pipe: WanPipeline, max_tokens: int) -> None:
        self.pipe, self.tokenizer, self.max_tokens = pipe, pipe.tokenizer, max_tokens

    @staticmethod
    def clean(prompt: str) -> str:
        return prompt_clean(prompt)

    def encode(self, prompts: list[str], device: str) -> PromptEncoding:
        states, _ = self.pipe.encode_prompt(
            prompts, do_classifier_free_guidance=False, max_sequence_length=self.max_tokens, device=device
        )
        ids = self.tokenizer([self.clean(p) for p in prompts], truncation=True, max_length=self.max_tokens)
        return PromptEncoding(states=states, token_ids=[list(row) for row in ids["input_ids"]])


class WanFolderAdapter:
    def __init__(self, card: ModelCard, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        if card.text_encoder != "umt5" or card.latent_space != "wan_vae":
            raise ValueError("a diffusers Wan2.1 folder has a UMT5 text encoder and a Wan VAE")
        self.card, self.model_id, self.revision, self.limits = card, card.model_id, card.revision, card.limits
        self.device, self.dtype = device, dtype
        weights = card.weights_path
        vae = AutoencoderKLWan.from_pretrained(weights / "vae", dtype=torch.float32)
        self.pipe = WanPipeline.from_pretrained(weights, vae=vae, dtype=dtype)
        if card.lora:
            self.pipe.load_lora_weights(card.lora["path"], adapter_name="card")
            self.pipe.fuse_lora(lora_scale=float(card.lora.get("scale", 1.0)))
            self.pipe.unload_lora_weights()  # the fused weights stay; the LoRA layers go
        self.pipe.to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.transformer = self.pipe.transformer.eval().requires_grad_(False)
        self.vae = self.pipe.vae
        self.text_encoder = UMT5Prompts(self.pipe, card.text_max_tokens)
        self.encodings = encoding_cache_for(card)

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    def encode_prompts(self, prompts: list[str]) -> PromptEncoding:
        enc = self.encodings.encode(prompts, lambda prompt: self.text_encoder.encode([prompt], self.device))
        enc.states = enc.states.to(self.device, self.dtype)
        return enc

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        temporal, spatial = self.pipe.vae_scale_factor_temporal, self.pipe.vae_scale_factor_spatial
        channels = self.transformer.config.in_channels
        return channels, (num_frames - 1) // temporal + 1, height // spatial, width // spatial

    def predict_velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, text_states: torch.Tensor
    ) -> torch.Tensor:
        return wan_velocity(self.transformer, self.dtype, latents, timestep, text_states)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """As WanPipeline's output_type="np" (floats in [0, 1]) times 255, rounded to uint8."""
        config = self.vae.config
        latents = latents.to(self.device, self.vae.dtype)
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(latents)
        inverse_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(latents)
        video = self.vae.decode(latents / inverse_std + mean, return_dict=False)[0]
        frames = self.pipe.video_processor.postprocess_video(video, output_type="pt")  # (B, F, 3, H, W) in [0, 1]
        return (frames * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous()
