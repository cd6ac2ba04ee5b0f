"""The target's preview maps, read off the source's stored cross-attention queries, on a small random Wan."""

import pytest
import torch

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.reuse.prepare import edit_region
from chorus.reuse.preview import target_maps
from chorus.reuse.prompt_diff import diff_for
from chorus.reuse.region import RegionConfig, region_mask
from tests.fixtures.random_wan import random_wan_adapter

SOURCE = GenerationRequest("a red circle moving left on a blue background", seed=3)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return random_wan_adapter(tmp_path_factory.mktemp("wan") / "tiny")


def test_the_sources_own_prompt_previews_its_recorded_map(adapter):
    """Unpooled, one layer: the preview of the source's own prompt is the map the source recorded there."""
    config = CaptureConfig(map_steps=(0,), map_layers=(1,), map_stride=(1, 1, 1), preview_layer=1)
    run = generate_with_reuse(adapter, [SOURCE], capture=config).captured[0]
    assert run.preview_layer == 1 and sorted(run.previews) == [0] and run.preview_grid == (4, 8, 8)
    preview = target_maps(adapter, run, SOURCE.prompt)[:, : len(run.token_ids)]
    torch.testing.assert_close(preview, run.attn_maps[0].float(), atol=2e-3, rtol=0)


def test_an_edits_region_adds_where_the_target_would_attend(adapter):
    run = generate_with_reuse(adapter, [SOURCE], capture=CaptureConfig(map_steps=(0,))).captured[0]
    target = "a red circle moving right on a blue background"
    diff = diff_for(adapter.text_encoder, run.prompt, target)
    config = RegionConfig(threshold=0.8, margin=(0, 0, 0), union_frames=False)
    source_only = region_mask(run.mean_map(), diff.source_tokens, run.map_grid, run.token_grid, config).mask
    target_only = region_mask(
        target_maps(adapter, run, target), diff.target_tokens, run.preview_grid, run.token_grid, config
    ).mask
    union = edit_region(adapter, run, target, diff, config).mask
    assert torch.equal(union, source_only | target_only)
    assert (target_only & ~source_only).any()  # the target's words point somewhere the source's did not


def test_no_preview_when_none_is_stored(adapter):
    run = generate_with_reuse(adapter, [SOURCE], capture=CaptureConfig(map_steps=(0,), preview_stride=())).captured[0]
    assert run.previews == {} and target_maps(adapter, run, SOURCE.prompt) is None
