"""Stage 2 with context on a small random Wan: the source's keys/values outside the region stand in for
the target's own where they are the same, and a batched Stage 2 of different regions equals separate ones.

Tolerance: fp32 throughout; the batched/padded attention and the stock processor differ only in summation
order, so outputs agree to 1e-5 (absolute, on latents of order 1).
"""

from dataclasses import replace

import pytest
import torch

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import DenoiseStats, GenerationRequest
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.stages import RegionMask
from chorus.reuse.plan import ReusePlan
from tests.fixtures.random_wan import random_wan_adapter

SOURCE = GenerationRequest("a red circle moving left on a blue background", seed=1)
EXACT = CaptureConfig(latent_dtype=torch.float32)
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return random_wan_adapter(tmp_path_factory.mktemp("wan") / "tiny")


def exact_capture(adapter, request=SOURCE, **config):
    """A full run with fp32 latents and context."""
    out = generate_with_reuse(adapter, [request], capture=replace(EXACT, **config))
    return out.captured[0], out.latents


def box(rows: slice, cols: slice) -> RegionMask:
    mask = torch.zeros(4, 8, 8, dtype=torch.bool)
    mask[:, rows, cols] = True
    return RegionMask(mask)


def test_a_full_grid_region_with_context_equals_the_full_forward(adapter):
    run, final = exact_capture(adapter)
    whole = RegionMask(torch.ones(4, 8, 8, dtype=torch.bool))
    out = generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, 1, 3)], [ReuseSource(run, whole)])
    torch.testing.assert_close(out.latents, final, **TOL)


def test_context_from_an_identical_source_reproduces_the_full_run(adapter):
    """Same prompt and seed: the source's keys outside the region are exactly the target's, so Stage 2 with
    context on a quarter of the grid gives the full run; without context it does not."""
    run, final = exact_capture(adapter)
    region = box(slice(2, 6), slice(2, 6))
    for halo in (0, 1):
        plan = ReusePlan(4, 1, 2, halo=halo)
        out = generate_with_reuse(adapter, [SOURCE], [plan], [ReuseSource(run, region)])
        torch.testing.assert_close(out.latents, final, **TOL)
    free = generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, 1, 2, context=False)], [ReuseSource(run, region)])
    assert (free.latents - final).abs().max() > 1e-3


@pytest.mark.parametrize("context", [True, False])
def test_batched_stage2_of_different_regions_equals_separate_forwards(adapter, context):
    run, _ = exact_capture(adapter)
    targets = [
        replace(SOURCE, prompt="a red square moving left on a blue background", seed=5),
        replace(SOURCE, prompt="a green circle moving left on a blue background", seed=6, guidance_scale=1.0),
    ]
    regions = [box(slice(2, 6), slice(2, 6)), box(slice(0, 3), slice(1, 8))]  # 64 and 84 tokens
    plans = [ReusePlan(4, 1, 2, context=context, halo=1), ReusePlan(4, 0, 2, context=context)]
    stats = DenoiseStats()
    together = generate_with_reuse(adapter, targets, plans, [ReuseSource(run, r) for r in regions], stats=stats).latents
    assert stats.forwards_per_step[1] == 1  # both Stage-2 rows in one forward
    for b in range(2):
        alone = generate_with_reuse(adapter, [targets[b]], [plans[b]], [ReuseSource(run, regions[b])]).latents
        torch.testing.assert_close(together[b : b + 1], alone, **TOL)


def test_pooled_context_is_smaller_and_close(adapter):
    run, final = exact_capture(adapter, context_stride=(1, 2, 2))
    assert run.context[1].shape[-2] == 4 * 4 * 4  # (t, h/2, w/2) cells of the 4x8x8 grid
    region = box(slice(2, 6), slice(2, 6))
    pooled = generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, 1, 2)], [ReuseSource(run, region)]).latents
    free = generate_with_reuse(
        adapter, [SOURCE], [ReusePlan(4, 1, 2, context=False)], [ReuseSource(run, region)]
    ).latents
    assert (pooled - final).abs().mean() < (free - final).abs().mean()


def test_a_plan_with_context_needs_the_sources_context(adapter):
    run, _ = exact_capture(adapter, context_steps=(0,))
    with pytest.raises(ValueError, match="context"):
        generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, 1, 1)], [ReuseSource(run, box(slice(0, 2), slice(0, 2)))])
