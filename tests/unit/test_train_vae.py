"""The autoencoder trainer (chorus.train.vae) and the latent-space path after it: a resumable run, a base
model trained on its latents, a distilled student, and a ``wan_vae`` card that loads and samples a clip.
Everything is tiny and random: these check the plumbing, not the quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from chorus.data.shapes import all_specs, render
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate
from chorus.eval.checker import read_clips, score
from chorus.models.wan import WanAdapter, vae_compression
from chorus.train.config import ArchConfig, TrainConfig
from chorus.train.distill import DistillConfig, distill
from chorus.train.loop import train
from chorus.train.vae import VaeArch, VaeConfig, reconstruction_scores, train_vae

TINY_VAE = VaeArch(base_dim=4, z_dim=4, dim_mult=(1, 2), num_res_blocks=1, temperal_downsample=(True,))


@pytest.fixture
def vae_run(tmp_path: Path) -> Path:
    cfg = VaeConfig(arch=TINY_VAE, num_frames=5, side=16, batch_size=1, max_steps=3, checkpoint_every=2, threads=1)
    out = tmp_path / "vae-run"
    assert train_vae(cfg, out, max_steps=2) == 2
    assert train_vae(cfg, out) == 3  # resumed from step 2
    return out


def test_a_short_vae_run_resumes_and_records_its_latent_statistics(vae_run: Path) -> None:
    rows = [json.loads(line) for line in (vae_run / "loss.jsonl").read_text().splitlines()]
    assert rows == [] or all({"step", "rec", "kl"} <= set(r) for r in rows)
    state = torch.load(vae_run / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 3 and "opt" in state
    vae = AutoencoderKLWan.from_pretrained(vae_run / "checkpoint" / "vae")
    assert vae_compression(vae) == (2, 2)
    assert len(vae.config.latents_std) == 4 and min(vae.config.latents_std) > 0
    result = reconstruction_scores(vae, 4, num_frames=5, side=16)
    assert {"color", "shape", "direction", "psnr"} <= set(result)


def test_a_base_model_trains_on_the_latents_distills_and_samples(vae_run: Path, tmp_path: Path) -> None:
    arch = ArchConfig(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=1, channels=4
    )
    cfg = TrainConfig(model_id="tiny-latent", arch=arch, num_frames=5, side=16, batch_size=2, max_steps=1, threads=1)
    cfg.vae = str(vae_run / "checkpoint")
    base = tmp_path / "base"
    assert train(cfg, base) == 1
    card = json.loads((base / "checkpoint" / "chorus_model.json").read_text())
    assert card["latent_space"] == "wan_vae" and (base / "checkpoint" / "vae" / "config.json").is_file()

    student = tmp_path / "student"
    dcfg = DistillConfig(batch_size=1, max_steps=1, teacher_steps=8, threads=1, flow_shift=3.0, sigma_grid="linear")
    assert distill(base / "checkpoint", student, dcfg) == 1
    adapter = WanAdapter.from_dir(student / "checkpoint")
    assert adapter.latent_shape(5, 16, 16) == (4, 3, 8, 8)
    request = GenerationRequest("a red square moving left on a black background", num_frames=5, height=16, width=16)
    frames = generate(adapter, [request])
    assert frames.shape == (1, 5, 16, 16, 3) and frames.dtype == torch.uint8


def test_the_checker_reads_ground_truth_at_the_latent_models_size() -> None:
    """9 frames x 64 x 64 (the wan_vae recipe's clips): the checker must be right there before it judges."""
    rng = np.random.default_rng(3)
    pool = all_specs()
    specs = [pool[i] for i in rng.choice(len(pool), size=96, replace=False)]
    result = score(read_clips([render(s, 9, 64, rng) for s in specs]), specs)
    assert min(result.values()) >= 0.99, result
