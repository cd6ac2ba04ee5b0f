"""A diffusers Wan2.1 folder served by Chorus with the cache off gives WanPipeline's frames for the same
prompt, negative prompt, seed, steps and guidance: with the folder's UniPC, with FlowMatchEuler, and with
a pinned 4-step re-noising card at guidance 1 (LightX2V's distilled sampler)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

from chorus.engine.denoise import DenoiseStats, GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from tests.fixtures.wan_folder import run_pipeline, wan_pipeline_frames, write_random_lora, write_wan_folder

REQUEST = GenerationRequest(
    "A red  square moving right &amp; a blue circle",  # cleaned as WanPipeline cleans it
    negative_prompt="low quality, blurred details",
    num_frames=9,
    height=32,
    width=48,
    num_inference_steps=6,
    guidance_scale=4.0,
    seed=11,
)
LIGHTX2V = Options(sigmas=(1.0, 0.75, 0.5, 0.25), flow_shift=5.0, renoise=True)  # 1, .9375, .8333, .625


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan21")
    return {name: write_wan_folder(root / name, scheduler=name) for name in ("unipc", "flow_match_euler")}


def chorus_frames(folder, models_dir, options: Options, request: GenerationRequest, stats=None) -> np.ndarray:
    card = ModelCard.load(add_model(folder, models_dir, options))
    out = generate_with_reuse(adapter_for(card), [request], stats=stats)
    return out.frames[0].numpy().astype(np.float64)


def assert_equal_frames(ours: np.ndarray, theirs: np.ndarray, label: str) -> None:
    diff = np.abs(ours - theirs)
    print(f"{label}: max {diff.max():.3f}/255, p99 {np.percentile(diff, 99):.3f}/255, shape {ours.shape}")
    assert ours.shape == theirs.shape == (9, 32, 48, 3)
    assert diff.max() <= 1.0


def test_unipc_folder_matches_wan_pipeline(folders, tmp_path):
    ours = chorus_frames(folders["unipc"], tmp_path, Options(model_id="unipc"), REQUEST)
    assert_equal_frames(ours, wan_pipeline_frames(folders["unipc"], REQUEST), "UniPC, 6 steps, guidance 4")


def test_flow_match_euler_folder_matches_wan_pipeline(folders, tmp_path):
    request = replace(REQUEST, num_inference_steps=5, guidance_scale=3.0, seed=3)
    ours = chorus_frames(folders["flow_match_euler"], tmp_path, Options(model_id="fme"), request)
    theirs = wan_pipeline_frames(folders["flow_match_euler"], request)
    assert_equal_frames(ours, theirs, "FlowMatchEuler, 5 steps, guidance 3")


def test_pinned_four_step_renoising_card_matches_wan_pipeline_in_one_forward_per_step(folders, tmp_path):
    request = replace(REQUEST, num_inference_steps=4, guidance_scale=1.0, seed=5)
    stats = DenoiseStats()
    ours = chorus_frames(folders["unipc"], tmp_path, replace(LIGHTX2V, model_id="distilled"), request, stats)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0, stochastic_sampling=True)
    theirs = wan_pipeline_frames(folders["unipc"], request, scheduler, LIGHTX2V.sigmas)
    assert_equal_frames(ours, theirs, "pinned 4-step re-noising, guidance 1")
    tokens = 3 * 2 * 3  # latent 3x4x6, patch (1, 2, 2)
    assert stats.forwards_per_step == [1] * 4 and stats.tokens_per_step == [tokens] * 4  # no unconditional rows
    assert torch.allclose(scheduler.sigmas[:4], torch.tensor([1.0, 0.9375, 0.8333, 0.625]), atol=1e-4)


def test_a_cards_lora_is_fused_at_load_as_wan_pipeline_applies_it(folders, tmp_path):
    folder = folders["unipc"]
    lora = write_random_lora(folder, tmp_path / "lora")
    request = replace(REQUEST, num_inference_steps=3)
    ours = chorus_frames(folder, tmp_path, Options(model_id="lora", lora=lora, lora_scale=0.7), request)
    pipe = WanPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(lora)
    pipe.set_adapters(pipe.get_active_adapters(), adapter_weights=0.7)  # applied per step, not fused
    assert_equal_frames(ours, run_pipeline(pipe, request), "UniPC + LoRA 0.7, 3 steps")
    base = chorus_frames(folder, tmp_path, Options(model_id="base"), request)
    assert np.abs(ours - base).max() > 10  # the LoRA changes the video
