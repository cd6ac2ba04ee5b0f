"""Run a WanTransformer3DModel on a subset of its video tokens (Stage 2's selective region denoising).

The selected tokens keep their true (t, h, w) positions: their rotary embeddings are gathered from the
full grid's. Self-attention then runs among the selected tokens only (or, with chorus.engine.context's
hook installed, reads the source's keys and values for the rest), cross-attention to the text as
usual, so block compute shrinks with the selected fraction. Each row may select its own tokens (an index
per row, padded to one length); padded rows need the context hook, which masks the padding.
Everything is diffusers' own modules (rope, patch_embedding, condition_embedder, blocks, norm_out,
proj_out); block and attention hooks installed on the model (intra-request caches, TGAA,
capture) therefore run here too.
"""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel


def token_grid(transformer: WanTransformer3DModel, latents: torch.Tensor) -> tuple[int, int, int]:
    """(frames, height, width) of the video token grid for ``latents`` (B, C, F, H, W)."""
    pt, ph, pw = transformer.config.patch_size
    _, _, f, h, w = latents.shape
    return f // pt, h // ph, w // pw


def patchify(latents: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, tokens, pt*ph*pw*C), in the per-token layout of Wan's ``proj_out``."""
    b, c, f, h, w = latents.shape
    pt, ph, pw = patch
    x = latents.reshape(b, c, f // pt, pt, h // ph, ph, w // pw, pw)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, (f // pt) * (h // ph) * (w // pw), -1)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of ``patchify`` (the same unpatchify as Wan's forward)."""
    b = tokens.shape[0]
    x = tokens.reshape(b, *grid, *patch, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def subset_forward(
    transformer: WanTransformer3DModel,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    text_states: torch.Tensor,
    index: torch.Tensor,
) -> torch.Tensor:
    """Model output for the video tokens ``index`` only: (B, n, pt*ph*pw*C_out), to be scattered back
    with ``patchify``/``unpatchify``. ``index`` holds flat (t, h, w) token indices, (n,) shared by the
    batch or (B, n) per row; ``timestep`` is (B,)."""
    rows = index.expand(latents.shape[0], -1) if index.ndim == 1 else index
    cos, sin = transformer.rope(latents)  # (1, N, 1, D): the full grid's positions
    rotary = (cos[0][rows], sin[0][rows])  # (B, n, 1, D)
    # The patch embedding is one strided conv over the input; running it on the full latent costs
    # about one linear layer and keeps diffusers' module as is. Tokens are dropped right after it.
    hidden = transformer.patch_embedding(latents).flatten(2).transpose(1, 2)
    hidden = torch.gather(hidden, 1, rows[..., None].expand(-1, -1, hidden.shape[-1]))
    temb, proj, text, _ = transformer.condition_embedder(timestep, text_states, None)
    proj = proj.unflatten(1, (6, -1))
    for block in transformer.blocks:
        hidden = block(hidden, text, proj, rotary)
    # Output modulation exactly as WanTransformer3DModel.forward (per-video timestep).
    shift, scale = (transformer.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
    hidden = (transformer.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
    return transformer.proj_out(hidden)
