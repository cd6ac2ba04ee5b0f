"""Randomly initialised Wan model folders, loadable like an installed model: for engine tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import WanTransformer3DModel

from chorus.models.catalog import CARD_FILE
from chorus.models.wan import WanAdapter

# A few hundred kB: runs a 4-step, 8-frame 32x32 video in well under a second on a CPU.
TINY_WAN: dict[str, Any] = {
    "patch_size": (2, 4, 4),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 3,
    "out_channels": 3,
    "text_dim": 384,
    "freq_dim": 16,
    "ffn_dim": 48,
    "num_layers": 2,
    "rope_max_seq_len": 64,
}


def write_random_wan(path: Path, seed: int = 0, flow_shift: float = 2.0, **config: Any) -> Path:
    """Save a random pixel-space WanTransformer3DModel (``TINY_WAN`` updated by ``config``) and its
    ``chorus_model.json`` card under ``path``; returns ``path``."""
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(**{**TINY_WAN, **config})
    transformer.save_pretrained(path / "transformer")
    card = {
        "model_id": path.name,
        "revision": f"random-{seed}",
        "latent_space": "pixel",
        "text_encoder": "minilm",
        "text_max_tokens": 32,
        "flow_shift": flow_shift,
        "limits": {"frames": [8], "min_side": 32, "max_side": 64, "side_multiple": 16},
    }
    (path / CARD_FILE).write_text(json.dumps(card, indent=2))
    return path


def random_wan_adapter(path: Path, seed: int = 0, **config: Any) -> WanAdapter:
    """``write_random_wan`` then load it the way installed models load."""
    return WanAdapter.from_dir(write_random_wan(path, seed, **config))
