"""calibration.json round-trips through the model folder, and the policy serves the calibrated plan of an
edit's kinds."""

import json
import shutil
from pathlib import Path

import pytest

from chorus.engine.capture import CaptureConfig
from chorus.models.catalog import CARD_FILE, find_model
from chorus.reuse.calibration import (
    CALIBRATION_FILE,
    CalibratedPlan,
    Calibration,
    KindCalibration,
    StepCalibration,
    card_calibration,
    read_calibration,
    write_calibration,
)
from chorus.reuse.plan import ReusePolicy
from chorus.reuse.prompt_diff import DiffKind, PromptDiff

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "chorus-shapes"
EDIT = PromptDiff(DiffKind.EDITED, ("red",), ("blue",), (3,), (3,), 0.1)
WAN4 = [3 * s / (1 + 2 * s) for s in (1, 0.75, 0.5, 0.25, 0)]  # the shipped model's 4-step grid: every step moves


def calibration_at_4(model_id: str, revision: str) -> Calibration:
    appearance = KindCalibration(
        CalibratedPlan(1, 1, context=False, halo=1), 48, 0.9, {"compute": 0.6, "accuracy_loss": 0.0}
    )
    layout = KindCalibration(CalibratedPlan(1, 0), 48, 0.85)
    kinds = {"appearance": appearance, "layout": layout, "identity": KindCalibration(None, 48, 0.9)}
    return Calibration(model_id, revision, {4: StepCalibration({"max_accuracy_loss": 1.0}, kinds)})


@pytest.fixture
def models_dir(tmp_path):
    """A copy of the shipped model's card (the weights are not read) in a temporary models folder."""
    folder = tmp_path / "chorus-shapes"
    folder.mkdir()
    shutil.copy(SHIPPED / CARD_FILE, folder / CARD_FILE)
    (folder / CALIBRATION_FILE).unlink(missing_ok=True)
    return tmp_path


def test_calibration_round_trips_through_the_card(models_dir):
    card = find_model("chorus-shapes", models_dir)
    assert card_calibration(card) is None
    written = calibration_at_4(card.model_id, card.revision)
    write_calibration(card.path, written)
    assert card_calibration(find_model("chorus-shapes", models_dir)) == written
    # a later calibration of another step count keeps this one's
    more = Calibration(card.model_id, card.revision, {8: written.steps[4]})
    write_calibration(card.path, more)
    assert set(card_calibration(find_model("chorus-shapes", models_dir)).steps) == {4, 8}
    # a later run of one kind at a step count keeps the other kinds measured under the same bound
    motion = KindCalibration(CalibratedPlan(2, 0), 48, 0.95)
    bound = written.steps[4].bound
    write_calibration(
        card.path, Calibration(card.model_id, card.revision, {4: StepCalibration(bound, {"motion": motion})})
    )
    kinds = card_calibration(find_model("chorus-shapes", models_dir)).steps[4].kinds
    assert kinds == {**written.steps[4].kinds, "motion": motion}
    # under another bound the step count is replaced whole
    looser = StepCalibration({"max_accuracy_loss": 5.0}, {"motion": motion})
    write_calibration(card.path, Calibration(card.model_id, card.revision, {4: looser}))
    assert card_calibration(find_model("chorus-shapes", models_dir)).steps[4] == looser


def test_a_calibration_of_another_revision_is_ignored(models_dir):
    card = find_model("chorus-shapes", models_dir)
    stale = calibration_at_4(card.model_id, "an-earlier-revision")
    (card.path / CALIBRATION_FILE).write_text(json.dumps(stale.to_dict()))
    assert card_calibration(find_model("chorus-shapes", models_dir)) is None


def test_the_policy_serves_the_calibrated_plan_of_the_kind_and_step_count():
    calibration = calibration_at_4("m", "r")
    policy = ReusePolicy()  # its gate makes every edit at 4 steps a miss
    kwargs = {"sigmas": WAN4, "region_fraction": 0.2, "edit_class": "local", "calibration": calibration}
    plan = policy.plan(1.0, EDIT, 4, edit_kinds={"appearance"}, **kwargs)
    assert (plan.stage1, plan.stage2, plan.context, plan.halo) == (1, 1, False, 1)
    assert plan.reason == "edit, calibrated appearance plan" and plan.edit_class == "local"
    report = plan.to_dict()
    assert (report["edit_class"], report["reason"], report["stages"]["stage2"]) == ("local", plan.reason, 1)

    gated = policy.plan(1.0, EDIT, 4, sigmas=WAN4, region_fraction=0.2, edit_kinds={"appearance"})
    assert not gated.hit and gated.reason == "miss: edit at fewer than 20 steps"
    at_8 = policy.plan(1.0, EDIT, 8, region_fraction=0.2, edit_kinds={"appearance"}, calibration=calibration)
    assert at_8.reason == "miss: edit at fewer than 20 steps"  # 8 steps not calibrated: the policy's rules
    missed = policy.plan(1.0, EDIT, 4, edit_kinds={"identity"}, **kwargs)
    assert not missed.hit and missed.reason == "miss: no calibrated plan for a identity edit"
    unmeasured = policy.plan(1.0, EDIT, 4, edit_kinds={"camera"}, **kwargs)
    assert not unmeasured.hit and unmeasured.reason == "miss: no calibrated plan for a camera edit"
    unknown = policy.plan(1.0, EDIT, 4, edit_kinds=None, **kwargs)
    assert not unknown.hit and unknown.reason == "miss: no calibrated plan for a unknown edit"


def test_an_edit_of_several_kinds_takes_the_most_conservative_plan_and_misses_with_any_unplanned_kind():
    calibration = calibration_at_4("m", "r")
    kwargs = {"sigmas": WAN4, "region_fraction": 0.2, "edit_class": "local", "calibration": calibration}
    both = ReusePolicy().plan(1.0, EDIT, 4, edit_kinds={"appearance", "layout"}, **kwargs)
    assert (both.stage1, both.stage2) == (1, 0) and both.reason == "edit, calibrated appearance+layout plan"
    entry = calibration.for_kinds({"appearance", "layout"}, 4).entry
    assert entry.similarity == 0.9  # the higher of the two bands' floors
    with_identity = ReusePolicy().plan(1.0, EDIT, 4, edit_kinds={"appearance", "identity"}, **kwargs)
    assert not with_identity.hit and "identity" in with_identity.reason


def test_a_global_mask_refines_the_kind_to_stage_1_only():
    calibration = calibration_at_4("m", "r")
    kwargs = {"sigmas": WAN4, "edit_kinds": {"appearance"}, "calibration": calibration}
    spread = ReusePolicy().plan(1.0, EDIT, 4, region_fraction=0.7, edit_class="global", **kwargs)
    assert (spread.stage1, spread.stage2) == (1, 0) and spread.reason.endswith("global mask")


def test_a_similarity_below_the_band_shrinks_the_plan():
    plan = CalibratedPlan(20, 10)
    step = StepCalibration({"max_accuracy_loss": 1.0}, {"appearance": KindCalibration(plan, 48, 0.9)})
    calibration = Calibration("m", "r", {50: step})
    policy = ReusePolicy(min_similarity=0.8)
    kwargs = {"edit_kinds": {"appearance"}, "region_fraction": 0.2, "edit_class": "local", "calibration": calibration}
    whole = policy.plan(0.95, EDIT, 50, **kwargs)
    half = policy.plan(0.85, EDIT, 50, **kwargs)
    assert (whole.stage1, whole.stage2) == (20, 10)
    assert (half.stage1, half.stage2) == (10, 5) and "below its similarity band 0.90" in half.reason
    assert policy.plan(0.8, EDIT, 50, **kwargs).hit is False  # at the policy's floor nothing is reused


def test_a_file_of_the_earlier_per_class_layout_is_read_as_no_kind_measured(tmp_path):
    old = {
        "model_id": "m",
        "revision": "r",
        "steps": {
            "4": {
                "bound": {"max_accuracy_loss": 1.0},
                "classes": {
                    "local": {"plan": {"k1": 1, "k2": 0, "context": True, "halo": 0}, "pairs": 40, "measured": None}
                },
            }
        },
    }
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(old))
    calibration = read_calibration(tmp_path, "m", "r")
    assert calibration.steps[4].kinds == {} and calibration.end_steps(4) == 0
    plan = ReusePolicy().plan(1.0, EDIT, 4, sigmas=WAN4, edit_kinds={"appearance"}, calibration=calibration)
    assert not plan.hit and plan.reason == "miss: no calibrated plan for a appearance edit"


def test_misses_store_what_a_calibrated_plan_reads():
    calibration = calibration_at_4("m", "r")
    config = ReusePolicy().capture_for(CaptureConfig(), 4, WAN4, calibration)
    assert set(config.latent_steps) >= {1, 2} and config.map_steps == (0, 1, 2, 3)  # maps at every step
    assert config.context_steps == ()  # the calibrated Stage 2 runs without the source's context
    with_context = KindCalibration(CalibratedPlan(1, 2, context=True), 48)
    calibration.steps[4].kinds["appearance"] = with_context
    assert ReusePolicy().capture_for(CaptureConfig(), 4, WAN4, calibration).context_steps == (1, 2)
    assert ReusePolicy().capture_for(CaptureConfig(), 4, WAN4).map_steps == ()  # uncalibrated: no edits at 4
