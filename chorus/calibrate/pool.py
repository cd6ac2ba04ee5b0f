"""One edit kind's pairs in a calibration: prepared and run without reuse once, grown on demand for a further
look (``chorus.calibrate.select.pair_looks``), each candidate's clips kept so that a look runs only the pairs
that candidate has not seen yet.

    pool = KindPool(adapter, prepared, judge, tgaa, batch_size, more=lambda count: prepare(...))
    figures = pool.measure(candidate, count=192, z=confidence_z(3))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chorus.calibrate.judge import Judge
from chorus.calibrate.measure import Outcome, PreparedPair, figures, resampled, run_group
from chorus.calibrate.select import Figures
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.reuse.calibration import CalibratedPlan

# About ``count`` more prepared pairs of the pool's kind; fewer (or none) where its source runs dry.
MorePairs = Callable[[int], list[PreparedPair]]


@dataclass
class KindPool:
    """A growing, ordered set of one kind's pairs with their runs without reuse; the first ``count`` pairs are
    the same whenever they are read."""

    adapter: VideoModelAdapter
    pairs: list[PreparedPair]
    judge: Judge | None
    tgaa: TGAAConfig
    batch_size: int
    more: MorePairs | None = None
    baseline: Outcome = field(init=False)
    runs: dict[CalibratedPlan, Outcome] = field(default_factory=dict, init=False)
    _their_scores: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.baseline = self._run(self.pairs, None)

    def _run(self, pairs: list[PreparedPair], candidate: CalibratedPlan | None) -> Outcome:
        return run_group(self.adapter, pairs, candidate, self.tgaa, self.batch_size)

    def grow_to(self, count: int) -> int:
        """Prepare and run pairs until the pool holds ``count`` or none are left; the pool's size."""
        while len(self.pairs) < count and self.more is not None:
            fresh = self.more(count - len(self.pairs))
            if not fresh:
                break
            self.baseline = self.baseline + self._run(fresh, None)
            self.pairs += fresh
        return len(self.pairs)

    def measure(self, candidate: CalibratedPlan, count: int, z: float) -> Figures:
        """``candidate``'s figures on the first ``count`` pairs (all there are, where the pool cannot grow that
        far), its losses' margins at ``z``; a candidate is read at growing counts only."""
        count = min(count, self.grow_to(count))
        seen = self.runs.get(candidate)
        done = len(seen) if seen is not None else 0
        assert done <= count, f"{candidate.label} was read on {done} pairs, now asked for {count}"
        if done < count:
            fresh = self._run(self.pairs[done:count], candidate)
            seen = fresh if seen is None else seen + fresh
            self.runs[candidate] = seen
        return figures(seen, self.baseline.head(count), self.pairs[:count], self.judge, self._theirs(count), z)

    def noise_floor(self, z: float) -> Figures:
        """No reuse at other seeds against no reuse at the targets' own, on the pairs there are: what another
        valid sample alone loses (reported beside the candidates, never chosen)."""
        count = len(self.pairs)
        outcome = self._run(resampled(self.pairs), None)
        return figures(outcome, self.baseline.head(count), self.pairs, self.judge, self._theirs(count), z)

    def _theirs(self, count: int) -> dict[str, np.ndarray] | None:
        """The judge's scores of the first ``count`` runs without reuse (read once per count)."""
        if self.judge is None:
            return None
        if count not in self._their_scores:
            reference = self.baseline.head(count).frames
            self._their_scores[count] = self.judge.per_clip(reference, self.pairs[:count], reference)
        return self._their_scores[count]
