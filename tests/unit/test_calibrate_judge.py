"""A model without the attribute checker is calibrated against a CLIP folder the user supplies (here a tiny
random CLIP built with transformers' config classes): prompt alignment and typicality per frame and over
the clip, paired against the uncached runs; PSNR and SSIM are still reported."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from chorus.cache.embedder import MiniLMEmbedder
from chorus.calibrate.judge import ClipJudge
from chorus.calibrate.pairs import EditPair
from chorus.calibrate.select import FIDELITY_BOUND, JUDGE_BOUND, MIN_PAIRS
from chorus.calibrate.sweep import calibrate
from tests.fixtures.random_wan import random_wan_adapter
from tests.fixtures.tiny_clip import write_tiny_clip

SCORES = {"alignment_frame", "alignment_clip", "typicality_frame", "typicality_clip"}


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    return ClipJudge(write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip"))


@dataclass
class Target:
    prompt: str


@dataclass
class Pair:
    target: Target


def clips(seed: int, count: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 4, 32, 32, 3), dtype=np.uint8)


def test_alignment_is_clips_own_text_image_cosine_per_frame_and_over_the_clip(judge):
    frames, prompts = clips(0), ["a red square", "a blue circle", "a green triangle"]
    scores = judge.per_clip(frames, [Pair(Target(p)) for p in prompts], clips(1))
    assert set(scores) == SCORES and all(v.shape == (3,) for v in scores.values())
    model, processor = judge.model, judge.processor
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            inputs = processor(text=[prompt], images=list(frames[i]), return_tensors="pt", padding="max_length")
            cosines = model(**inputs).logits_per_image[:, 0] / model.logit_scale.exp()
            assert scores["alignment_frame"][i] == pytest.approx(100 * cosines.mean().item(), abs=1e-3)
    assert (scores["typicality_frame"] <= 100 + 1e-3).all() and (scores["typicality_clip"] <= 100 + 1e-3).all()


def test_the_uncached_clips_themselves_lose_nothing(judge):
    reference, group = clips(2), [Pair(Target("a red square moving right"))] * 3
    ours, theirs = judge.per_clip(reference.copy(), group, reference), judge.per_clip(reference, group, reference)
    assert all(np.allclose(ours[name], theirs[name]) for name in SCORES)


@pytest.fixture(scope="module")
def report(tmp_path_factory, judge):
    """A 4-step calibration of a random Wan folder (no checker reads it) on colour edits, one candidate."""
    adapter = random_wan_adapter(tmp_path_factory.mktemp("wan") / "random-wan")
    colours = ["red", "blue", "green", "yellow", "purple"]
    pairs = [
        EditPair(f"a {a} square moving right", f"a {b} square moving right") for a in colours for b in colours if a != b
    ]
    pairs = (pairs * 2)[:MIN_PAIRS]
    return calibrate(
        adapter, pairs, 4, JUDGE_BOUND, judge=judge, embedder=MiniLMEmbedder(), batch_size=20, max_k1=1, max_k2=0
    )


def test_a_model_without_a_checker_is_calibrated_by_the_judge_per_kind(report):
    assert [(k.kind, k.pairs) for k in report.kinds] == [("appearance", MIN_PAIRS)]
    kind = report.kinds[0]
    assert 0 < kind.similarity < 1  # the pairs' lowest cache-key similarity: the band's floor
    (measured,) = kind.measured
    figures = measured.figures
    assert figures.judge == "clip" and set(figures.losses) == SCORES and figures.accuracy is None
    assert 0 < figures.psnr and 0 < figures.ssim <= 1  # still reported
    assert (kind.chosen is not None) == JUDGE_BOUND.admits(figures)
    assert not FIDELITY_BOUND.needs_judge and JUDGE_BOUND.needs_judge
    entry = report.calibration("random-wan", "random-0").steps[4].kinds["appearance"]
    assert entry.pairs == MIN_PAIRS and entry.similarity == pytest.approx(kind.similarity, abs=1e-4)
