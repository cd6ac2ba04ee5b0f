"""The reuse policy: deliberate identical/seed-variant/edit/miss plans at 4 and 50 steps."""

from types import SimpleNamespace

import pytest

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import GenerationRequest
from chorus.reuse.calibration import CalibratedPlan, Calibration, KindCalibration, StepCalibration, VariantCalibration
from chorus.reuse.plan import ReusePlan, ReusePolicy, StepGrid
from chorus.reuse.prepare import prepare_reuse
from chorus.reuse.prompt_diff import DiffKind, PromptDiff

IDENTICAL = PromptDiff(DiffKind.IDENTICAL)
EDIT = PromptDiff(DiffKind.EDITED, ("up",), ("down",), (3,), (3,), 0.33)
UNRELATED = PromptDiff(DiffKind.UNRELATED, changed_fraction=0.9)
# Larger edit plans than the defaults, at any step count, so each stage shows; the defaults have their own test.
# Without a sampler's sigmas the grid is evenly spaced: sigma 0.75 is a quarter of the steps, 0.25 three.
policy = ReusePolicy(stage1_sigma=0.75, stage2_sigma=0.25, seed_variant_sigma=0.75, min_edit_steps=1)


@pytest.mark.parametrize(("steps", "stages"), [(4, (1, 2, 1)), (50, (12, 25, 13))])
def test_edit_at_full_similarity(steps, stages):
    plan = policy.plan(0.999, EDIT, steps, region_fraction=0.2)
    assert plan.hit and (plan.stage1, plan.stage2, plan.stage3) == stages
    assert plan.recomputed_fraction_per_step() == [0.0] * stages[0] + [0.2] * stages[1] + [1.0] * stages[2]


def test_edit_shrinks_with_similarity_and_misses_below_the_floor():
    k = [policy.plan(s, EDIT, 50, region_fraction=0.2) for s in (0.95, 0.9, 0.85, 0.79)]
    assert [(p.stage1, p.stage2) for p in k] == [(12, 25), (8, 17), (4, 8), (0, 0)]
    assert not k[-1].hit and k[-1].reason.startswith("miss")


def test_high_similarity_never_means_nothing_to_recompute():
    """'tilt up' vs 'tilt down' embed at ~0.999: the edit still gets Stage 2 on its tokens and repair steps."""
    for steps in (1, 2, 4, 50):
        plan = policy.plan(1.0, EDIT, steps, region_fraction=0.2)
        assert plan.stage3 >= 1
    no_region = policy.plan(1.0, EDIT, 4, region_fraction=None)
    assert (no_region.stage1, no_region.stage2, no_region.stage3) == (1, 0, 3)


def test_edits_below_the_step_floor_are_misses_but_seed_variants_are_not():
    default = ReusePolicy()
    below = default.plan(1.0, EDIT, default.min_edit_steps - 1, region_fraction=0.2)
    assert not below.hit and below.reason == f"miss: edit at fewer than {default.min_edit_steps} steps"
    at_floor = default.plan(1.0, EDIT, default.min_edit_steps, region_fraction=0.2)
    assert (at_floor.stage1, at_floor.stage2) == (0, 1)  # sigma 0.95 on an even 20-step grid: one step
    wan = [3 * s / (1 + 2 * s) for s in [1 - i / 20 for i in range(21)]]
    assert default.plan(1.0, EDIT, 20, sigmas=wan, region_fraction=0.2).stage2 == 2  # 10% of its steps
    wan4 = [3 * s / (1 + 2 * s) for s in (1, 0.75, 0.5, 0.25, 0)]
    variant = default.plan(1.0, IDENTICAL, 4, sigmas=wan4)  # no Stage 1 at 4 steps keeps a variant new
    assert not variant.hit and variant.reason == "miss: seed variant leaves nothing to reuse"
    wan50 = [3 * s / (1 + 2 * s) for s in [1 - i / 50 for i in range(51)]]
    assert default.plan(1.0, IDENTICAL, 50, sigmas=wan50).stage1 == 4  # 4 of 50 keep it 0.82 as far as new


def test_large_region_drops_stage2_and_halves_stage1():
    assert (lambda p: (p.stage1, p.stage2))(policy.plan(1.0, EDIT, 50, region_fraction=0.8)) == (6, 0)
    small = policy.plan(1.0, EDIT, 4, region_fraction=0.8)
    assert not small.hit and "too large" in small.reason


def test_identical_prompt_same_seed_replays_the_stored_trajectory():
    plan = policy.plan(1.0, IDENTICAL, 4, same_inputs=True)
    assert (plan.stage1, plan.stage2, plan.stage3, plan.reason) == (4, 0, 0, "replay")
    partial = policy.plan(1.0, IDENTICAL, 50, same_inputs=True, stored_steps=[10, 20, 30])
    assert (partial.stage1, partial.stage3) == (30, 20)


def test_identical_prompt_other_seed_is_a_seed_variant():
    wan = [3 * s / (1 + 2 * s) for s in (1, 0.75, 0.5, 0.25, 0)]  # sigma 0.75 after two steps
    plan = policy.plan(1.0, IDENTICAL, 4, sigmas=wan, same_inputs=False)
    assert (plan.stage1, plan.stage2, plan.stage3, plan.reason) == (2, 0, 2, "seed variant")
    assert policy.plan(1.0, IDENTICAL, 4, same_inputs=False).stage1 == 1  # the same noise level, evenly spaced
    assert not policy.plan(1.0, IDENTICAL, 1).hit


def test_unrelated_prompt_is_a_miss_whatever_the_similarity():
    assert not policy.plan(0.99, UNRELATED, 4).hit


def test_plan_is_fitted_to_the_stored_latents():
    plan = policy.plan(
        1.0, EDIT, 50, region_fraction=0.2, stored_steps=[10, 11, 12, 13, 25, 50]
    )  # k1=12 kept, 14 missing
    assert (plan.stage1, plan.stage2) == (12, 1) and "shrunk" in plan.reason
    assert not policy.plan(1.0, EDIT, 50, region_fraction=0.2, stored_steps=[]).hit


def test_to_dict_is_what_job_metrics_record():
    plan = policy.plan(0.999, EDIT, 4, region_fraction=0.25, source_id="entry-1")
    d = plan.to_dict()
    assert d["hit"] and d["source_id"] == "entry-1" and d["similarity"] == 0.999
    assert d["stages"] == {"stage1": 1, "stage2": 2, "stage3": 1}
    assert d["diff"]["source_words"] == ["up"] and d["diff"]["target_tokens"] == [3]
    assert d["recomputed_fraction_per_step"] == [0.0, 0.25, 0.25, 1.0]
    assert d["steps_saved"] == plan.steps_saved == 1 + 2 * 0.75
    assert ReusePlan(4).to_dict()["hit"] is False


def test_misses_store_attention_maps_and_context_only_where_a_stage_2_can_use_them():
    full = CaptureConfig()
    at_50 = ReusePolicy().capture_for(full, 50)
    assert at_50.map_steps and at_50.context_steps == (0, 1)  # Stage 2 down to sigma 0.95: steps 0-1
    at_4 = ReusePolicy().capture_for(full, 4)
    assert at_4.map_steps == at_4.context_steps == ()  # edits are misses below min_edit_steps
    stage1_only = ReusePolicy(stage1_sigma=0.5, stage2_sigma=0.5).capture_for(full, 50)
    assert stage1_only.map_steps == stage1_only.context_steps == ()
    named = CaptureConfig(latent_steps=(3,), map_steps=(1,), context_steps=(1,))
    assert ReusePolicy().capture_for(named, 50) == named  # steps named in the config win


def test_misses_store_only_the_latents_a_plan_reads():
    """Even grid, 50 steps: a replay reads 50, a seed variant 12 (sigma 0.75), edits 1-2 (down to 0.95)."""
    config = ReusePolicy(seed_variant_sigma=0.75).capture_for(CaptureConfig(), 50)
    assert (config.latent_steps, config.map_steps) == ((1, 2, 12, 50), (0, 1))


def test_a_dissimilar_source_is_a_miss_before_the_prompts_are_diffed():
    fake_adapter = SimpleNamespace(text_encoder=None)  # no tokenizer: diffing would fail
    fake_run = SimpleNamespace(num_steps=4, guidance_scale=3.0)
    request = GenerationRequest(prompt="a red circle", num_inference_steps=4, guidance_scale=3.0)
    plan, source = prepare_reuse(fake_adapter, request, fake_run, similarity=0.5, source_id="7")
    assert source is None and not plan.hit
    assert (plan.reason, plan.similarity, plan.source_id) == ("miss: similarity below 0.8", 0.5, "7")


def test_stages_are_placed_by_noise_level_whatever_the_step_count():
    """The same policy covers the same part of the trajectory at 4, 8 and 50 steps of one grid."""
    for steps in (4, 8, 50):
        wan = [3 * s / (1 + 2 * s) for s in [1 - i / steps for i in range(steps + 1)]]
        variant = policy.plan(1.0, IDENTICAL, steps, sigmas=wan)
        assert variant.stage1 == steps // 2  # sigma 0.75 is half way on Wan's shift-3 grid


def test_repair_steps_are_steps_that_still_move_the_latent():
    """diffusers' default grid ends with a step from sigma ~0.004 to 0: repairing there repairs nothing."""
    default_grid = [1.0, 0.8, 0.5, 0.004, 0.0]
    plan = ReusePolicy(seed_variant_sigma=0.0).plan(1.0, IDENTICAL, 4, sigmas=default_grid)
    assert (plan.stage1, plan.stage3) == (2, 2)
    assert StepGrid(4, default_grid).reusable_steps(1) == 2 and StepGrid(4).reusable_steps(1) == 3


def test_a_calibrated_seed_variant_cell_overrides_the_policy_sigma():
    """Where the model's calibration measured seed variants at a step count, its Stage 1 is what they reuse
    (0: a miss) and what a miss stores; other step counts keep ``seed_variant_sigma``."""
    calibration = Calibration("m", "r", seed_variants={50: VariantCalibration(0, 48), 16: VariantCalibration(1, 48)})
    assert policy.plan(1.0, IDENTICAL, 50, same_inputs=False).stage1 == 12  # by the policy's sigma 0.75
    missed = policy.plan(1.0, IDENTICAL, 50, same_inputs=False, calibration=calibration)
    assert not missed.hit and missed.reason == "miss: seed variant leaves nothing to reuse"
    assert policy.plan(1.0, IDENTICAL, 16, same_inputs=False, calibration=calibration).stage1 == 1
    assert policy.plan(1.0, IDENTICAL, 4, same_inputs=False, calibration=calibration).stage1 == 1  # not measured
    default = ReusePolicy(seed_variant_sigma=0.75)  # edits store steps 1-2 at 50 steps, a variant step 12
    assert set(default.capture_for(CaptureConfig(), 50).latent_steps) == {1, 2, 12, 50}
    assert set(default.capture_for(CaptureConfig(), 50, calibration=calibration).latent_steps) == {1, 2, 50}


def test_the_steps_a_source_could_give_are_told_from_its_words_before_any_fetch():
    """What picks among the nearest entries: a calibrated kind's plan (shrunk below its band), a seed
    variant's Stage 1, the policy's own edit plan where edits are reused, else nothing."""
    plan = KindCalibration(CalibratedPlan(2, 1), 48, 0.9)
    kinds = {"identity": plan, "motion": KindCalibration(None, 48, 0.9)}
    calibration = Calibration("m", "r", {16: StepCalibration({}, kinds)})
    assert policy.steps_from_words(0.95, False, {"identity"}, 16, calibration=calibration) == 3
    assert policy.steps_from_words(0.85, False, {"identity"}, 16, calibration=calibration) == 1  # shrunk
    assert policy.steps_from_words(0.95, False, {"identity", "motion"}, 16, calibration=calibration) == 0
    assert policy.steps_from_words(0.7, False, {"identity"}, 16, calibration=calibration) == 0  # too far
    assert policy.steps_from_words(1.0, True, None, 16, calibration=calibration) == 4  # a variant, sigma 0.75
    assert policy.steps_from_words(0.999, False, {"motion"}, 50) == 37  # the policy's own edit plan
    assert ReusePolicy().steps_from_words(0.999, False, {"motion"}, 4) == 0  # no edit reuse at 4 steps
