"""Paired confidence intervals: the same requests (same prompt, same seed) with the cache on and off.

``paired_difference(on, off, clusters)`` takes one value per request for each side (1.0/0.0 for an
attribute read right or wrong, or any per-request figure) and returns the mean of each side, their
difference (on - off) and a 95% percentile-bootstrap interval on it. Pairing is what keeps the interval
narrow: a request both sides get right, or both wrong, adds no variance; only the requests on which they
disagree do. The bootstrap resamples whole ``clusters`` (e.g. the source a trace's requests derive from),
not single requests, because requests of one source are not independent: a cache that copies its
source's mistake makes the same mistake on every request reusing it. Without ``clusters`` every request
is its own. Resampling uses a fixed seed, so a report's intervals are reproducible.

Sizing a stream: with requests resampled alone, the half-width is about z * sqrt(var(d) / n) for
per-request differences d (for right/wrong outcomes var(d) is about the share of requests on which the
sides disagree); clusters widen it by the square root of the design effect. ``requests_needed`` measures
both on a run and says how many requests a stream like it needs for a given half-width.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 4000


@dataclass(frozen=True)
class Interval:
    """Means of both sides over ``n`` paired requests, their difference and its interval [low, high]."""

    n: int
    on: float
    off: float
    diff: float
    low: float
    high: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cluster_sums(diff: np.ndarray, clusters: Sequence[Hashable] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, the sum of differences and the number of requests."""
    if clusters is None:
        return diff, np.ones_like(diff)
    ids: dict[Hashable, int] = {}
    labels = np.array([ids.setdefault(c, len(ids)) for c in clusters])
    return np.bincount(labels, weights=diff), np.bincount(labels).astype(float)


def paired_difference(
    on: Sequence[float],
    off: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean on - off over paired requests, with a percentile-bootstrap interval over ``clusters``."""
    a, b = np.asarray(on, dtype=float), np.asarray(off, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a) or (clusters is not None and len(clusters) != len(a)):
        raise ValueError("need one value per request on each side (and one cluster per request), at least one")
    sums, counts = _cluster_sums(a - b, clusters)
    picks = np.random.default_rng(seed).integers(len(sums), size=(resamples, len(sums)))
    resampled = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    diff = float(a.mean() - b.mean())
    # Interpolated percentiles can land a rounding error beside the difference itself: keep it inside.
    return Interval(len(a), float(a.mean()), float(b.mean()), diff, min(float(low), diff), max(float(high), diff))


def requests_needed(
    on: Sequence[float],
    off: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    half_width: float = 0.03,
    confidence: float = CONFIDENCE,
) -> int | None:
    """Requests a stream like the measured one needs for the interval on its paired difference to be
    within +-``half_width``: z^2 var(d) / half_width^2, times the design effect of its ``clusters``
    (variance of the mean with clusters resampled over that with requests alone). None where the sides
    never differ (any number will do)."""
    from scipy.stats import norm

    diff = np.asarray(on, dtype=float) - np.asarray(off, dtype=float)
    variance = float(diff.var())
    if variance == 0:
        return None
    sums, counts = _cluster_sums(diff, clusters)
    grouped = float(((sums - diff.mean() * counts) ** 2).sum() / counts.sum() ** 2)
    effect = max(1.0, grouped / (variance / len(diff)))
    z = float(norm.ppf(0.5 + confidence / 2))
    return int(np.ceil(effect * z**2 * variance / half_width**2))
