"""The three-stage reuse loop on a small random Wan: exactness when off, stage accounting, reproduction,
Stage-2 semantics, and diffusers' intra-request caches running inside it."""

from dataclasses import replace

import pytest
import torch
from diffusers import AutoencoderKLWan, WanPipeline
from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig
from diffusers.hooks.mag_cache import MagCacheHeadHook

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import Canceled, DenoiseStats, GenerationRequest
from chorus.engine.sampling import Trajectories, make_scheduler
from chorus.engine.staged import ReuseSource, generate, generate_with_reuse
from chorus.engine.stages import RegionMask
from chorus.engine.subset_forward import patchify
from chorus.engine.tgaa import TGAAConfig
from chorus.reuse.plan import ReusePlan, ReusePolicy
from chorus.reuse.prepare import prepare_reuse
from chorus.reuse.region import RegionConfig
from tests.fixtures.random_wan import random_wan_adapter

SOURCE = GenerationRequest("a red circle moving left on a blue background", negative_prompt="blurry", seed=1)
EXACT = CaptureConfig(latent_dtype=torch.float32)
TOKENS = 4 * 8 * 8  # token grid of 8 frames 32x32 with patch (2, 4, 4)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return random_wan_adapter(tmp_path_factory.mktemp("wan") / "tiny")


@pytest.fixture(scope="module")
def source(adapter):
    out = generate_with_reuse(adapter, [SOURCE], capture=EXACT)
    return out.captured[0], out.latents


def box_region() -> RegionMask:
    mask = torch.zeros(4, 8, 8, dtype=torch.bool)
    mask[:, 2:6, 2:6] = True  # 64 of 256 tokens
    return RegionMask(mask)


def test_tgaa_without_a_stage2_changes_nothing(adapter):
    requests = [SOURCE, GenerationRequest("a green square moving up", seed=7, guidance_scale=5.0)]
    expected = generate(adapter, requests)  # WanPipeline's result: see the next test
    out = generate_with_reuse(adapter, requests, tgaa=TGAAConfig(alpha=2.0))
    assert torch.equal(out.frames, expected)  # TGAA on, nothing in Stage 2


def test_without_reuse_output_matches_diffusers_wan_pipeline(tmp_path):
    """Same transformer, scheduler, noise and prompt embeddings through diffusers' WanPipeline. It runs the
    conditional and unconditional passes as two forwards where we batch them, so float32 results agree to
    rounding: max abs difference <= 1e-5 on latents of magnitude ~5. The pipeline sets the scheduler's
    timesteps itself, so the model samples on the scheduler's default grid here."""
    adapter = random_wan_adapter(tmp_path / "tiny", sigma_grid="default")
    vae = AutoencoderKLWan(base_dim=4, z_dim=4, dim_mult=[1, 1], num_res_blocks=1, temperal_downsample=[False])
    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=vae,
        scheduler=make_scheduler(adapter, 4),
        transformer=adapter.transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    text = adapter.encode_prompts([SOURCE.prompt, SOURCE.negative_prompt]).states
    shape = adapter.latent_shape(SOURCE.num_frames, SOURCE.height, SOURCE.width)
    theirs = pipe(
        prompt_embeds=text[:1],
        negative_prompt_embeds=text[1:],
        latents=Trajectories(adapter, [SOURCE.seed], shape, SOURCE.num_inference_steps).noise,  # the seed's first draw
        num_inference_steps=SOURCE.num_inference_steps,
        guidance_scale=SOURCE.guidance_scale,
        height=32,
        width=32,
        num_frames=9,
        output_type="latent",
        return_dict=False,
    )[0]
    ours = generate_with_reuse(adapter, [SOURCE]).latents
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_stage_accounting_matches_the_plans(adapter, source):
    run, _ = source
    requests = [replace(SOURCE, prompt="a red square moving left on a blue background"), SOURCE, SOURCE]
    plans = [ReusePlan(4, 1, 2), ReusePlan(4), ReusePlan(4, 4, 0)]  # Stage 1+2+3, a miss, a replay
    sources = [ReuseSource(run, box_region()), None, ReuseSource(run)]
    seen: list[int] = []  # video tokens entering the first block, per transformer call
    hook = adapter.transformer.blocks[0].register_forward_pre_hook(lambda _m, a: seen.append(a[0].shape[:2].numel()))
    stats = DenoiseStats()
    try:
        generate_with_reuse(adapter, requests, plans, sources, stats=stats)
    finally:
        hook.remove()
    region = 64
    assert stats.forwards_per_step == [1, 2, 2, 1]
    assert stats.tokens_per_step == [2 * TOKENS, 2 * TOKENS + 2 * region, 2 * TOKENS + 2 * region, 4 * TOKENS]
    assert seen == [2 * TOKENS, 2 * TOKENS, 2 * region, 2 * TOKENS, 2 * region, 4 * TOKENS]
    assert stats.forwards == len(seen) and stats.tokens == sum(seen)
    assert stats.steps_skipped == 1 + 4
    assert {"stage1", "stage2", "stage3", "full"} <= stats.stage_seconds.keys()


def test_stage1_from_a_runs_own_latent_reproduces_the_run(adapter, source):
    run, final = source
    for k1 in (1, 2, 3):
        out = generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, k1, 0)], [ReuseSource(run)])
        assert torch.equal(out.latents, final)
    plan, reused = prepare_reuse(adapter, SOURCE, run, similarity=1.0)
    assert (plan.stage1, plan.reason) == (4, "replay")
    assert torch.equal(generate_with_reuse(adapter, [SOURCE], [plan], [reused]).latents, final)


def test_default_fp16_capture_reproduces_closely(adapter):
    out = generate_with_reuse(adapter, [SOURCE], capture=CaptureConfig(latent_steps=(2,)))
    run = out.captured[0]
    assert sorted(run.latents) == [2] and run.latents[2].dtype == torch.float16
    again = generate_with_reuse(adapter, [SOURCE], [ReusePlan(4, 2, 0)], [ReuseSource(run)]).latents
    torch.testing.assert_close(again, out.latents, atol=1e-2, rtol=1e-2)


def test_stage2_recomputes_the_region_and_takes_the_rest_from_the_source(adapter, source):
    run, final = source
    target = replace(SOURCE, prompt="a red square moving left on a blue background")
    region = box_region()
    out = generate_with_reuse(adapter, [target], [ReusePlan(4, 1, 3)], [ReuseSource(run, region)])  # no Stage 3
    ours, theirs = patchify(out.latents, (2, 4, 4))[0], patchify(final, (2, 4, 4))[0]
    inside = region.mask.flatten()
    assert torch.equal(ours[~inside], theirs[~inside])
    assert not torch.allclose(ours[inside], theirs[inside], atol=1e-3)
    amplified = generate_with_reuse(
        adapter,
        [target],
        [ReusePlan(4, 1, 3, diff=prepare_reuse(adapter, target, run, 1.0)[0].diff)],
        [ReuseSource(run, region)],
        tgaa=TGAAConfig(alpha=4.0),
    ).latents
    assert not torch.allclose(amplified, out.latents, atol=1e-4)  # TGAA acts on the target's tokens


def test_prepared_edit_runs_all_three_stages(adapter, source):
    run, _ = source
    target = replace(SOURCE, prompt="a red circle moving right on a blue background")
    plan, reused = prepare_reuse(
        adapter,
        target,
        run,
        similarity=0.99,
        region=RegionConfig(threshold=0.9, margin=(0, 0, 0)),
        policy=ReusePolicy(stage1_sigma=0.75, stage2_sigma=0.25, max_region_fraction=0.9, min_edit_steps=1),
    )
    assert (plan.stage1, plan.stage2, plan.stage3) == (1, 2, 1), plan.reason
    assert plan.diff.target_words == ("right",) and 0 < plan.region_fraction <= 0.9
    stats = DenoiseStats()
    out = generate_with_reuse(adapter, [target], [plan], [reused], stats=stats)
    assert torch.isfinite(out.latents).all()
    assert stats.tokens_per_step[:3] == [0, 2 * len(reused.region.index), 2 * len(reused.region.index)]


def test_seed_variant_swaps_in_the_targets_noise(adapter, source):
    run, final = source
    variant = replace(SOURCE, seed=99)
    plan = ReusePlan(4, 2, 0)
    kept = generate_with_reuse(adapter, [variant], [plan], [ReuseSource(run)], renoise=False).latents
    swapped = generate_with_reuse(adapter, [variant], [plan], [ReuseSource(run)]).latents
    assert torch.equal(kept, final)  # without the swap the seed would be ignored
    assert not torch.allclose(swapped, final, atol=1e-3)


@pytest.mark.parametrize(
    "config",
    [
        FirstBlockCacheConfig(threshold=0.3),
        MagCacheConfig(mag_ratios=[1.0] * 4, num_inference_steps=4, retention_ratio=0.0, threshold=0.1),
    ],
    ids=["first_block_cache", "mag_cache"],
)
def test_intra_request_caches_combine_with_reuse(adapter, source, config):
    run, _ = source
    requests = [replace(SOURCE, prompt="a blue circle moving left on a blue background"), replace(SOURCE, seed=5)]
    plans, sources = [ReusePlan(4, 1, 2), ReusePlan(4)], [ReuseSource(run, box_region()), None]
    uncached = generate_with_reuse(adapter, requests, plans, sources).latents
    computed: list[int] = []
    hook = adapter.transformer.blocks[1].attn1.register_forward_pre_hook(lambda *_: computed.append(1))
    adapter.transformer.enable_cache(config)
    try:
        cached = generate_with_reuse(adapter, requests, plans, sources).latents
        plain = generate(adapter, requests)  # the plain loop also runs with the cache enabled
    finally:
        adapter.transformer.disable_cache()
        hook.remove()
    assert len(computed) < 6 + 4  # the intra-request cache skipped blocks (6 reuse + 4 plain forwards)
    assert torch.isfinite(cached).all() and plain.shape == (2, 8, 32, 32, 3)
    assert (cached - uncached).norm() / uncached.norm() < 0.05


def test_mag_cache_reads_its_schedule_at_the_true_step(adapter, source):
    """A hit that starts at step 2 (Stage 1) must have MagCache read mag_ratios[2], not mag_ratios[0]."""
    run, _ = source
    config = MagCacheConfig(mag_ratios=[1.0] * 4, num_inference_steps=4, retention_ratio=0.0, threshold=0.1)
    seen: list[int] = []

    def read_step(*_) -> None:
        head = adapter.transformer.blocks[0]._diffusers_hook.hooks.values()
        seen.extend(h.state_manager.get_state().step_index for h in head if isinstance(h, MagCacheHeadHook))

    hook = adapter.transformer.blocks[0].register_forward_pre_hook(read_step)
    adapter.transformer.enable_cache(config)
    try:
        generate_with_reuse(adapter, [replace(SOURCE, seed=5)], [ReusePlan(4, 2, 0)], [ReuseSource(run)])
    finally:
        adapter.transformer.disable_cache()
        hook.remove()
    assert seen == [2, 3]


def test_cancel_between_steps_removes_the_processors(adapter, source):
    run, _ = source
    original = [block.attn2.processor for block in adapter.transformer.blocks]
    with pytest.raises(Canceled):
        generate_with_reuse(
            adapter,
            [SOURCE, SOURCE],
            [ReusePlan(4, 1, 2), ReusePlan(4)],
            [ReuseSource(run, box_region()), None],
            tgaa=TGAAConfig(alpha=2.0),
            capture=EXACT,
            on_step=lambda done, total: done < 2,
        )
    assert all(block.attn2.processor is p for block, p in zip(adapter.transformer.blocks, original))
