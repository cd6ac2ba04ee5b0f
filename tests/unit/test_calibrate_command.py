"""``chorus calibrate`` as a user runs it: the console script on a copy of the shipped model's folder
(CHORUS_MODELS_DIR pointing at it: tests never write into models/), and its refusals of bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chorus.calibrate.select import CHECKER_BOUND
from chorus.models.catalog import find_model
from chorus.reuse.calibration import CALIBRATION_FILE, card_calibration

CHORUS = str(Path(sys.executable).with_name("chorus"))
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "chorus-shapes"


@pytest.fixture
def env(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "models" / "chorus-shapes")
    (tmp_path / "models" / "chorus-shapes" / CALIBRATION_FILE).unlink(missing_ok=True)
    return {**os.environ, "CHORUS_MODELS_DIR": str(tmp_path / "models"), "CHORUS_DEVICE": "cpu"}


def chorus(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHORUS, "calibrate", *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_small_calibration_of_the_shipped_model_is_written_into_its_folder(env):
    # Two pairs: fewer than a kind is measured on (the measurement itself is tested on a random Wan in
    # test_calibrate_judge), so the run is the pairs' sources, their kinds and what is written.
    result = chorus(env, "--model", "chorus-shapes", "--steps", "4", "--pairs", "2", "--kind", "scene", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bound"] == CHECKER_BOUND.to_dict() and report["unread_pairs"] == 0
    (scene,) = report["kinds"]
    assert (scene["kind"], scene["pairs"], scene["chosen"], scene["candidates"]) == ("scene", 2, None, [])
    card = find_model("chorus-shapes", Path(env["CHORUS_MODELS_DIR"]))
    calibration = card_calibration(card)
    assert (calibration.model_id, calibration.revision) == (card.model_id, card.revision)
    assert set(calibration.steps[4].kinds) == {"scene"}
    entry = calibration.steps[4].kinds["scene"]
    assert entry.plan is None and entry.pairs == 2  # too few pairs: scene edits miss at 4 steps
    assert entry.similarity == pytest.approx(scene["similarity"], abs=1e-4) and 0 < entry.similarity < 1
    dry = chorus(env, "--model", "chorus-shapes", "--steps", "8", "--pairs", "2", "--kind", "layout", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert set(card_calibration(card).steps) == {4}  # a dry run writes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model", "--steps", "4"], "not installed"),
        (["--model", "chorus-shapes", "--steps", "0"], "--steps must be in"),
        (["--model", "chorus-shapes", "--steps", "4", "--prompts", "/no/such/file"], "no such prompt file"),
        (["--model", "chorus-shapes", "--steps", "4", "--bound", "lpips=1"], "expected accuracy="),
        (["--model", "chorus-shapes", "--steps", "4", "--bound", "judge=1"], "judged by --judge"),
        (["--model", "chorus-shapes", "--steps", "4", "--judge", "/no/such/clip"], "no such judge folder"),
        (["--model", "chorus-shapes", "--steps", "4", "--kind", "camera"], "--kind 'camera'"),
        (["--model", "chorus-shapes", "--steps", "4", "--pairs", "48", "--max-pairs", "40"], "--max-pairs grows"),
    ],
)
def test_bad_input_exits_with_code_2_and_a_message(env, args, message):
    result = chorus(env, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_a_prompt_file_with_fewer_than_two_prompts_is_refused(env, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red square moving right\n\na red square moving right\n")
    result = chorus(env, "--model", "chorus-shapes", "--steps", "4", "--prompts", str(prompts), "--bound", "psnr=30")
    assert result.returncode == 2 and "pairing needs at least 2" in result.stderr


def test_the_seed_variant_sweep_prints_how_new_each_variant_is_and_writes_its_choice(env):
    folder = Path(env["CHORUS_MODELS_DIR"]) / "chorus-shapes"
    args = ["--model", "chorus-shapes", "--steps", "4", "--seed-variants", "--pairs", "2", "--json"]
    dry = chorus(env, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not (folder / CALIBRATION_FILE).exists()
    result = chorus(env, *args)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    rows = out["rows"]
    assert [r["name"] for r in rows] == ["no reuse", "k1=1", "k1=2", "k1=3"]  # up to the repair step
    assert rows[0]["ratio"] == 1.0 and all(0 <= r["accuracy"] <= 100 for r in rows)
    assert all(r["upper_losses"]["all"] >= 3.0 for r in rows[1:])  # 2 prompts cannot show a 1-point bound
    assert out["chosen_k1"] == 0
    calibration = card_calibration(find_model("chorus-shapes", folder.parent))
    assert calibration.variant_steps(4) == 0 and calibration.seed_variants[4].prompts == 2
