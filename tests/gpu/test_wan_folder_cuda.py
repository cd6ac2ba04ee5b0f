"""On CUDA, a Wan2.1 folder served by Chorus gives WanPipeline's frames on the same device and dtype (the
seed's noise is drawn on the CPU either way): fp32 within 1/255, bf16 within a few levels."""

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan, WanPipeline

from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from tests.fixtures.wan_folder import run_pipeline, write_wan_folder

pytestmark = pytest.mark.gpu
REQUEST = GenerationRequest("a red square moving right", "low quality", 9, 32, 48, 6, 4.0, 11)


@pytest.mark.parametrize(
    ("dtype", "torch_dtype", "tolerance"), [("fp32", torch.float32, 1.0), ("bf16", torch.bfloat16, 8.0)]
)
def test_cuda_frames_match_wan_pipeline(tmp_path, dtype, torch_dtype, tolerance):
    folder = write_wan_folder(tmp_path / "wan")
    card = ModelCard.load(add_model(folder, tmp_path / "models", Options()))
    ours = generate_with_reuse(adapter_for(card, "cuda", dtype), [REQUEST]).frames[0].cpu().numpy().astype(float)
    vae = AutoencoderKLWan.from_pretrained(folder / "vae", dtype=torch.float32)
    pipe = WanPipeline.from_pretrained(folder, vae=vae, dtype=torch_dtype).to("cuda")
    diff = np.abs(ours - run_pipeline(pipe, REQUEST))
    print(f"cuda {dtype}: max {diff.max():.3f}/255, p99 {np.percentile(diff, 99):.3f}/255")
    assert diff.max() <= tolerance
