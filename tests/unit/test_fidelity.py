"""PSNR, SSIM and temporal consistency on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chorus.data.shapes import ClipSpec, render
from chorus.eval.fidelity import psnr, ssim, temporal_change, temporal_consistency

SPEC = ClipSpec("orange", "circle", "right", "gray", "large", "quickly")


@pytest.fixture
def clip() -> np.ndarray:
    return render(SPEC, rng=np.random.default_rng(0))


def _noisy(clip: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0, sigma, clip.shape)
    return np.clip(clip + noise, 0, 255).round().astype(np.uint8)


def test_identical_videos_are_perfect(clip: np.ndarray) -> None:
    assert psnr(clip, clip) == math.inf
    assert ssim(clip, clip) == pytest.approx(1.0)


def test_psnr_matches_its_definition() -> None:
    a = np.zeros((2, 16, 16, 3), np.uint8)
    b = a + 10  # mse = 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))


def test_more_noise_scores_lower(clip: np.ndarray) -> None:
    light, heavy = _noisy(clip, 5), _noisy(clip, 30)
    assert math.inf > psnr(light, clip) > psnr(heavy, clip) > 0
    assert 1.0 > ssim(light, clip) > ssim(heavy, clip) > 0
    assert ssim(heavy, clip) == pytest.approx(ssim(clip, heavy))  # symmetric


def test_mismatched_or_tiny_inputs_are_rejected(clip: np.ndarray) -> None:
    with pytest.raises(ValueError):
        psnr(clip, clip[:4])
    with pytest.raises(ValueError):
        ssim(clip[:, :8, :8], clip[:, :8, :8])


def test_temporal_change_and_consistency(clip: np.ndarray) -> None:
    still = np.repeat(clip[:1], len(clip), axis=0)
    assert temporal_change(still) == 0.0
    assert temporal_change(clip) > 0
    # Data-like motion is ~1, a frozen clip 0, a flickering one far above 1.
    assert temporal_consistency([clip], [SPEC]) == pytest.approx(1.0, abs=0.15)
    assert temporal_consistency([still], [SPEC]) == 0.0
    assert temporal_consistency([_noisy(clip, 30)], [SPEC]) > 2.0
