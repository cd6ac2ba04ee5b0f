"""The analytic checker must be right on ground truth before it judges a model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from chorus.data.captions import caption, named_attributes
from chorus.data.shapes import BACKGROUNDS, ClipSpec, all_specs, render
from chorus.eval.checker import ATTRIBUTES, Reading, confusions, read_clip, read_clips, score


@pytest.mark.parametrize("seed", [0, 1])
def test_ground_truth_reads_right_on_every_spec(seed: int) -> None:
    specs = all_specs()  # every combination (both sizes, both speeds), at random start positions
    rng = np.random.default_rng(seed)
    result = score(read_clips([render(s, rng=rng) for s in specs]), specs)
    assert set(result) == {*ATTRIBUTES, "all"}
    for attribute in (*ATTRIBUTES, "all"):
        assert result[attribute] >= 0.99, result


def _noisy(clip: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(clip + rng.normal(0, sigma, clip.shape), 0, 255).astype(np.uint8)


def _blurred(clip: np.ndarray, sigma: float) -> np.ndarray:
    smooth = ndimage.gaussian_filter(clip.astype(np.float64), (0, sigma, sigma, 0))
    return np.clip(smooth, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("perturb", ["noise", "blur", "blur+noise"])
def test_perturbed_clips_still_read_right(perturb: str) -> None:
    rng = np.random.default_rng(1)
    specs = [all_specs()[i] for i in rng.choice(len(all_specs()), size=120, replace=False)]
    clips = [render(s, rng=rng) for s in specs]
    if "blur" in perturb:
        clips = [_blurred(c, 0.8) for c in clips]
    if "noise" in perturb:
        clips = [_noisy(c, 20, rng) for c in clips]
    result = score(read_clips(clips), specs)
    assert min(result.values()) >= 0.97, result


def test_empty_noise_and_still_clips_read_as_unknown() -> None:
    rng = np.random.default_rng(2)
    empty = np.full((8, 32, 32, 3), BACKGROUNDS["white"], np.uint8)
    assert read_clip(empty) == Reading(None, None, None, "white")

    noise = read_clip(rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    assert (noise.color, noise.shape, noise.direction) == (None, None, None)

    frame = render(ClipSpec("red", "square", "left", "black", size="large"), num_frames=1, rng=rng)
    still = read_clip(np.repeat(frame, 8, axis=0))
    assert (still.color, still.shape, still.direction) == ("red", "square", None)
    assert (still.size, still.speed) == ("large", None)  # a still object has a size and no speed


def test_score_and_confusions_count_unknown_as_wrong() -> None:
    specs = [ClipSpec("red", "circle", "left", "gray"), ClipSpec("blue", "square", "up", "black")]
    readings = [Reading("red", "circle", "left", "gray", "small", "slowly"), Reading("blue", None, "down", "black")]
    expected = {"color": 1.0, "shape": 0.5, "direction": 0.5, "background": 1.0, "size": 0.5, "speed": 0.5}
    assert score(readings, specs) == expected | {"all": 0.5}
    errors = confusions(readings, specs)
    assert errors["shape"] == {"square->unknown": 1}
    assert errors["direction"] == {"up->down": 1}
    assert errors["color"] == {} and errors["size"] == {"small->unknown": 1}


def test_all_stays_over_the_four_core_attributes() -> None:
    specs = [ClipSpec("red", "circle", "left", "gray", "large", "quickly")]
    wrong_size = [Reading("red", "circle", "left", "gray", size="small", speed="quickly")]
    assert score(wrong_size, specs) == {
        "color": 1.0,
        "shape": 1.0,
        "direction": 1.0,
        "background": 1.0,
        "size": 0.0,
        "speed": 1.0,
        "all": 1.0,
    }


def test_an_attribute_is_judged_only_where_the_prompt_names_it() -> None:
    specs = [ClipSpec("red", "circle", "left", "gray", "large"), ClipSpec("blue", "square", "up", "black")]
    prompts = [caption(specs[0], template=1), caption(specs[1], template=0)]  # names size / names neither
    named = [named_attributes(p) for p in prompts]
    assert "size" in named[0] and not {"size", "speed"} & named[1]
    readings = [Reading("red", "circle", "left", "gray", "small", "slowly"), Reading("blue", "square", "up", "black")]
    result = score(readings, specs, named)
    assert result["size"] == 0.0 and "speed" not in result and result["all"] == 1.0
    assert confusions(readings, specs, named)["size"] == {"large->small": 1}
