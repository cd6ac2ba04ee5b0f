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
from chorus.models.wan import WanBase


class UMT5Prompts:
    """The folder's tokenizer and UMT5 encoder, called through the pipeline; ``tokenizer``, ``max_tokens``
    and ``clean`` are what the prompt diff needs to find a word's token positions."""

    def __init__(self, pipe: WanPipeline, max_tokens: int, device: str) -> None:
        self.pipe, self.tokenizer, self.max_tokens, self.device = pipe, pipe.tokenizer, max_tokens, device

    @staticmethod
    def clean(prompt: str) -> str:
        return prompt_clean(prompt)

    def encode(self, prompts: list[str]) -> PromptEncoding:
        states, _ = self.pipe.encode_prompt(
            prompts, do_classifier_free_guidance=False, max_sequence_length=self.max_tokens, device=self.device
        )
        ids = self.tokenizer([self.clean(p) for p in prompts], truncation=True, max_length=self.max_tokens)
        return PromptEncoding(states=states, token_ids=[list(row) for row in ids["input_ids"]])


class WanFolderAdapter(WanBase):
    def __init__(self, card: ModelCard, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        if card.text_encoder != "umt5" or card.latent_space != "wan_vae":
            raise ValueError("a diffusers Wan2.1 folder has a UMT5 text encoder and a Wan VAE")
        super().__init__(card, device, dtype)
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
        self.text_encoder = UMT5Prompts(self.pipe, card.text_max_tokens, device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """As WanPipeline's output_type="np" (floats in [0, 1]) times 255, rounded to uint8."""
        video = self.vae_decode(latents)
        frames = self.pipe.video_processor.postprocess_video(video, output_type="pt")  # (B, F, 3, H, W) in [0, 1]
        return (frames * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous()
