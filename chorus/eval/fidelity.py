"""Reference fidelity (PSNR, SSIM) and temporal consistency of uint8 videos.

Videos are uint8 arrays (..., H, W, 3): one frame, a clip (F, H, W, 3) or a batch.
PSNR and SSIM compare a video with a reference of the same shape (e.g. a cache-hit
output against the full-compute output of the same prompt and seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from chorus.data.shapes import ClipSpec, render

_PEAK = 255.0


def _check_pair(video: np.ndarray, reference: np.ndarray) -> None:
    if video.shape != reference.shape:
        raise ValueError(f"shapes differ: {video.shape} vs {reference.shape}")
    if video.ndim < 3 or video.shape[-1] != 3:
        raise ValueError(f"expected (..., H, W, 3), got {video.shape}")


def psnr(video: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels; ``inf`` for identical videos."""
    _check_pair(video, reference)
    mse = np.mean((video.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(_PEAK**2 / mse))


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).view(1, 1, size, size)


def ssim(video: np.ndarray, reference: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004: Gaussian window 11, sigma 1.5,
    K1 0.01, K2 0.03, valid filtering), per channel and frame, averaged; 1.0 when identical."""
    _check_pair(video, reference)
    height, width = video.shape[-3:-1]
    if min(height, width) < window:
        raise ValueError(f"frames of {height}x{width} are smaller than the {window}px window")

    def planes(a: np.ndarray) -> torch.Tensor:  # every (frame, channel) as one grey image
        return torch.from_numpy(a.reshape(-1, height, width, 3)).permute(0, 3, 1, 2).reshape(-1, 1, height, width)

    x, y = planes(video).double(), planes(reference).double()
    g = _gaussian_window(window, sigma)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, g)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def temporal_change(clip: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of a clip (F, H, W, 3), in 0..255 units."""
    if clip.ndim != 4 or clip.shape[0] < 2:
        raise ValueError(f"expected a clip (F>=2, H, W, 3), got {clip.shape}")
    return float(np.abs(np.diff(clip.astype(np.int16), axis=0)).mean())


def temporal_consistency(
    clips: Sequence[np.ndarray], specs: Sequence[ClipSpec], renders_per_spec: int = 4, seed: int = 0
) -> float:
    """Frame-to-frame change of ``clips`` relative to ground-truth clips of the same specs.

    1.0 moves as much as the data; above it flickers or jumps, below it is too
    still. Ground truth is rendered (several random start positions per spec).
    """
    if len(clips) != len(specs) or not specs:
        raise ValueError("need one spec per clip, and at least one")
    rng = np.random.default_rng(seed)
    frames, side = clips[0].shape[0], clips[0].shape[1]
    generated = sum(temporal_change(c) for c in clips)
    data = sum(np.mean([temporal_change(render(s, frames, side, rng)) for _ in range(renders_per_spec)]) for s in specs)
    return float(generated / data)
