"""calibration.json round-trips through the model folder, and the policy serves the calibrated plan."""

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
    ClassCalibration,
    StepCalibration,
    card_calibration,
    write_calibration,
)
from chorus.reuse.plan import ReusePolicy
from chorus.reuse.prompt_diff import DiffKind, PromptDiff

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "chorus-shapes"
EDIT = PromptDiff(DiffKind.EDITED, ("red",), ("blue",), (3,), (3,), 0.1)
WAN4 = [3 * s / (1 + 2 * s) for s in (1, 0.75, 0.5, 0.25, 0)]  # the shipped model's 4-step grid: every step moves


def calibration_at_4(model_id: str, revision: str) -> Calibration:
    local = ClassCalibration(CalibratedPlan(1, 1, context=False, halo=1), 12, {"compute": 0.6, "accuracy_loss": 0.0})
    step = StepCalibration({"max_accuracy_loss": 1.0}, {"local": local, "global": ClassCalibration(None, 12)})
    return Calibration(model_id, revision, {4: step})


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


def test_a_calibration_of_another_revision_is_ignored(models_dir):
    card = find_model("chorus-shapes", models_dir)
    stale = calibration_at_4(card.model_id, "an-earlier-revision")
    (card.path / CALIBRATION_FILE).write_text(json.dumps(stale.to_dict()))
    assert card_calibration(find_model("chorus-shapes", models_dir)) is None


def test_the_policy_serves_the_calibrated_plan_of_the_class_and_step_count():
    calibration = calibration_at_4("m", "r")
    policy = ReusePolicy()  # its gate makes every edit at 4 steps a miss
    plan = policy.plan(1.0, EDIT, 4, sigmas=WAN4, region_fraction=0.2, edit_class="local", calibration=calibration)
    assert (plan.stage1, plan.stage2, plan.context, plan.halo) == (1, 1, False, 1)
    assert plan.reason == "edit, calibrated local plan" and plan.edit_class == "local"
    report = plan.to_dict()
    assert (report["edit_class"], report["reason"], report["stages"]["stage2"]) == ("local", plan.reason, 1)

    gated = policy.plan(1.0, EDIT, 4, sigmas=WAN4, region_fraction=0.2, edit_class="local")
    assert not gated.hit and gated.reason == "miss: edit at fewer than 20 steps"
    uncalibrated_steps = policy.plan(1.0, EDIT, 8, region_fraction=0.2, edit_class="local", calibration=calibration)
    assert uncalibrated_steps.reason == "miss: edit at fewer than 20 steps"
    missed = policy.plan(1.0, EDIT, 4, sigmas=WAN4, region_fraction=0.7, edit_class="global", calibration=calibration)
    assert not missed.hit and missed.reason == "miss: no calibrated plan for a global edit"


def test_the_calibrated_plan_is_clipped_by_the_stored_latents_and_the_region():
    calibration = calibration_at_4("m", "r")
    policy = ReusePolicy()
    kwargs = {"sigmas": WAN4, "edit_class": "local", "calibration": calibration}
    shrunk = policy.plan(1.0, EDIT, 4, region_fraction=0.2, stored_steps=[1], **kwargs)
    assert (shrunk.stage1, shrunk.stage2) == (1, 0) and "shrunk to the stored latents" in shrunk.reason
    no_region = policy.plan(1.0, EDIT, 4, region_fraction=None, **kwargs)
    assert (no_region.stage1, no_region.stage2) == (1, 0) and no_region.reason.endswith("no region")


def test_misses_store_what_a_calibrated_plan_reads():
    calibration = calibration_at_4("m", "r")
    config = ReusePolicy().capture_for(CaptureConfig(), 4, WAN4, calibration)
    assert set(config.latent_steps) >= {1, 2} and config.map_steps == (0, 1, 2, 3)  # maps at every step
    assert config.context_steps == ()  # the calibrated Stage 2 runs without the source's context
    with_context = ClassCalibration(CalibratedPlan(1, 2, context=True), 12)
    calibration.steps[4].classes["local"] = with_context
    assert ReusePolicy().capture_for(CaptureConfig(), 4, WAN4, calibration).context_steps == (1, 2)
    assert ReusePolicy().capture_for(CaptureConfig(), 4, WAN4).map_steps == ()  # uncalibrated: no edits at 4
