"""Paired intervals on cache-on vs cache-off figures of the same requests."""

import numpy as np
import pytest

from chorus.bench.paired import paired_difference, requests_needed


def test_identical_sides_give_an_interval_of_zero():
    right = np.random.default_rng(0).random(50) < 0.7
    interval = paired_difference(right, right)
    assert (interval.diff, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert interval.on == interval.off == right.mean() and interval.n == 50
    assert requests_needed(right, right) is None


def test_a_known_difference_lies_inside_and_the_interval_shrinks_with_n():
    rng = np.random.default_rng(1)

    def interval(n: int):
        off = rng.random(n) < 0.8
        on = off & (rng.random(n) >= 0.1)  # the cache loses a tenth of what no cache gets right: -8 points
        return paired_difference(on.astype(float), off.astype(float))

    small, large = interval(200), interval(3000)
    assert small.low <= -0.08 <= small.high and large.low <= -0.08 <= large.high
    assert large.high - large.low < (small.high - small.low) / 2
    assert large.low <= large.diff <= large.high < 0


def test_clusters_widen_the_interval_when_a_source_shares_its_mistake():
    off = np.ones(200)
    on = np.ones(200)
    on[:40] = 0  # two sources of twenty requests each: every request reusing them is wrong
    clusters = np.repeat(np.arange(10), 20)
    alone, grouped = paired_difference(on, off), paired_difference(on, off, clusters)
    assert alone.diff == grouped.diff == pytest.approx(-0.2)
    assert grouped.high - grouped.low > 2 * (alone.high - alone.low)
    assert requests_needed(on, off, clusters) > 5 * requests_needed(on, off)


def test_requests_needed_matches_the_normal_approximation():
    off = np.zeros(1000)
    on = np.zeros(1000)
    on[:50], off[50:100] = 1, 1  # a tenth of the requests disagree, no difference on average
    assert requests_needed(on, off, half_width=0.03) == pytest.approx(1.96**2 * 0.1 / 0.03**2, rel=0.01)


def test_mismatched_sides_are_refused():
    with pytest.raises(ValueError):
        paired_difference([1.0, 0.0], [1.0])
