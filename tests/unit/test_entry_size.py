"""Entry sizes computed from the capture configuration: equal to what a real capture stores, and within
64 MB for Wan2.1 at 480x832, 81 frames, 50 steps."""

import pytest
import torch

from chorus.cache.entries import WAN21, LatentSpace, context_bytes, entry_size, fit_stage2
from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import GenerationRequest
from chorus.engine.sampling import make_scheduler, wan_sigmas
from chorus.engine.staged import generate_with_reuse
from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from chorus.reuse.plan import ReusePolicy
from tests.fixtures.wan_folder import write_wan_folder

POOLED = CaptureConfig()  # maps pooled over 2x2 token patches


def test_the_policys_plans_read_only_the_stored_steps():
    policy = ReusePolicy(seed_variant_sigma=0.75)
    at50 = policy.capture_for(POOLED, 50, wan_sigmas(50))
    assert at50.latent_steps == (1, 2, 3, 4, 5, 6, 25, 50)  # edits' Stages 1-2, the seed variant's, a replay's
    assert at50.map_steps == (0, 5)  # the first and last Stage-2 step
    at4 = policy.capture_for(POOLED, 4, wan_sigmas(4))  # edits are misses at 4 steps: no maps
    assert (at4.latent_steps, at4.map_steps) == ((2, 4), ())


@pytest.mark.parametrize("model", sorted(WAN21))
def test_wan21_entries_at_480p_50_steps_fit_in_64_mb_plus_their_context_budget(model):
    space, budget = WAN21[model], 64 * 2**20
    config = ReusePolicy().capture_for(POOLED, 50, wan_sigmas(50))
    grid = space.token_grid(81, 480, 832)
    full = context_bytes(space.layers, space.width, grid, config)
    assert full > 20e9  # every block's keys and values, both passes, six steps: far too much to store
    size = entry_size(space, 81, 480, 832, fit_stage2(space.layers, space.width, grid, config, budget), 512)
    assert size.latent_bytes + size.map_bytes <= 64 * 2**20 and 0 < size.stage2_bytes <= budget
    everything = CaptureConfig(tuple(range(1, 51)), tuple(range(50)), map_stride=(1, 1, 1))  # unpooled
    assert entry_size(WAN21[model], 81, 480, 832, everything, 512).total > 1.8e9  # the 1.9 GB


def test_computed_size_equals_a_real_captures_bytes(tmp_path):
    folder = write_wan_folder(tmp_path / "wan")
    adapter = adapter_for(ModelCard.load(add_model(folder, tmp_path / "models", Options())))
    request = GenerationRequest("a red square moving right", "low quality", 9, 32, 48, 20, 4.0, 1)
    config = ReusePolicy().capture_for(POOLED, 20, make_scheduler(adapter, 20).sigmas)
    run = generate_with_reuse(adapter, [request], capture=config).captured[0]
    assert sorted(run.latents) == list(config.latent_steps) and sorted(run.attn_maps) == list(config.map_steps)
    assert all(m.shape[1] == len(run.token_ids) for m in run.attn_maps.values())
    model = adapter.transformer.config
    space = LatentSpace(channels=4, layers=model.num_layers, width=model.num_attention_heads * model.attention_head_dim)
    expected = entry_size(space, 9, 32, 48, config, len(run.token_ids))
    assert run.nbytes == expected.total and expected.map_bytes > 0 and expected.stage2_bytes > 0
    assert run.latents[20].dtype == torch.float16
