"""Sampling time of one 4-step clip at batch 1 (guidance on, prompt encoding included) and weights' size for
each candidate architecture of issue 14 part 2, with random weights: the shipped pixel-space patch (2,4,4),
finer pixel patches, and the wan_vae latent space (``chorus train-vae`` autoencoder + patch (1,2,2)).

    nice -n 19 .venv/bin/python scripts/shape_capacity_timing.py [--vae training/chorus-shapes-v3-vae/checkpoint]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from chorus.engine.denoise import GenerationRequest
from chorus.eval.sample import seconds_per_clip
from chorus.models.wan import WanAdapter
from chorus.train.config import ArchConfig
from chorus.train.vae import VaeArch

CANDIDATES = {  # name: (latent_space, patch, frames, side)
    "pixel (2,4,4) 8x32x32 [shipped]": ("pixel", (2, 4, 4), 8, 32),
    "pixel (2,2,2) 8x32x32": ("pixel", (2, 2, 2), 8, 32),
    "pixel (1,2,2) 8x32x32": ("pixel", (1, 2, 2), 8, 32),
    "wan_vae x4 z8 + (1,2,2) 9x64x64": ("wan_vae", (1, 2, 2), 9, 64),
}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.safetensors"))


def build(root: Path, latent_space: str, patch, frames: int, side: int, vae_ckpt: Path | None) -> Path:
    channels = 3
    if latent_space == "wan_vae":
        if vae_ckpt is not None:
            shutil.copytree(vae_ckpt / "vae", root / "vae")
        else:
            AutoencoderKLWan(**VaeArch(base_dim=8, z_dim=8).kwargs()).save_pretrained(root / "vae")
        channels = AutoencoderKLWan.load_config(root / "vae")["z_dim"]
    arch = ArchConfig(patch_size=patch, channels=channels)
    WanTransformer3DModel(**arch.wan_kwargs()).save_pretrained(root / "transformer")
    card = {
        "model_id": root.name,
        "revision": "random",
        "latent_space": latent_space,
        "text_encoder": "minilm",
        "text_max_tokens": 32,
        "flow_shift": 3.0,
        "sigma_grid": "linear",
        "limits": {
            "frames": [frames],
            "min_side": side,
            "max_side": side,
            "side_multiple": 16,
            "default_frames": frames,
            "default_height": side,
            "default_width": side,
        },
    }
    (root / "chorus_model.json").write_text(json.dumps(card))
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vae", type=Path, default=None, help="a train-vae checkpoint (default: random AE)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (space, patch, frames, side)) in enumerate(CANDIDATES.items()):
            root = build(Path(tmp) / f"m{i}", space, patch, frames, side, args.vae)
            adapter = WanAdapter.from_dir(root)
            prompt = "a red square moving left on a black background"
            requests = [GenerationRequest(prompt, num_frames=frames, height=side, width=side, seed=s) for s in range(3)]
            secs = seconds_per_clip(adapter, requests)
            tokens = adapter.latent_shape(frames, side, side)
            n_tok = (tokens[1] // patch[0]) * (tokens[2] // patch[1]) * (tokens[3] // patch[2])
            row = {"candidate": name, "tokens": n_tok, "s_per_4step_clip": round(secs, 3)}
            row["weights_MB"] = round(folder_size(root) / 1e6, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
