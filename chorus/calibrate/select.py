"""A calibration's bound, the figures it is checked on, and the choice of plan per edit kind.

The shipped models are judged by their attribute checker: a plan passes when it loses at most
``max_accuracy_loss`` points against no reuse on the same pairs and seeds on *every* attribute the checker
reads, not only the edited one (a plan can keep the new colour and leak the source's size). Models without a
checker are judged by a CLIP or SigLIP folder the user supplies (``chorus.calibrate.judge``): prompt
alignment and typicality among the uncached runs' own clips, per frame and over the clip, each within
``max_judge_loss`` points. PSNR and SSIM against the uncached target stay reported; as a bound
(``min_psnr``, ``min_ssim``) they refuse every Stage 1, whose result is another valid sample of the target
prompt, not the target's own. Of the plans that pass, the one that computes least wins.

A plan's loss is read from paired clips (the same target prompt and seed, with and without reuse), but a
reused clip is another valid sample, not the target's own: two independent no-reuse samples of the same
48 targets already differ on a third of the pairs' "all" reading and by 2-17 points of an attribute's mean
(bench/results/calibration_kinds.md). So the bound is checked on each loss's one-sided 95% upper
confidence limit (``Figures.upper_losses``: mean paired loss + z standard errors of the per-pair
differences), not on its mean: a plan that passes by the luck of its draw does not, and the limit says how
many pairs a bound needs (a plan whose clips differ from no reuse's on 15 of 48 pairs cannot show less than
~12 points). A class with fewer than ``MIN_PAIRS`` pairs gets no plan at all.

Such a bound needs hundreds of pairs where clips differ at all, so a calibration may look again
(``pair_looks``): a candidate not yet shown within the bound is measured on more pairs, up to a budget, until
some loss's *lower* confidence limit lies outside the bound (it loses more than the bound, confidently: one
pair of 48 that got worse, 2.1 points on average, does not end it). Each look spends a share of the 5%
(``confidence_z``: Bonferroni over the looks), so looking again does not let a lucky plan through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from chorus.reuse.calibration import CalibratedPlan

Side = Literal["upper", "lower"]  # which one-sided confidence limit of a loss
_BOUND_KEYS = {"accuracy": "max_accuracy_loss", "judge": "max_judge_loss", "psnr": "min_psnr", "ssim": "min_ssim"}


@dataclass(frozen=True)
class Figures:
    """A plan's measurements on one edit kind's pairs."""

    compute: float  # transformer tokens relative to no reuse
    psnr: float  # mean dB against the full computation of each target (identical clips capped)
    ssim: float  # mean SSIM against the same
    accuracy: float | None = None  # edited-attribute accuracy in %, where a checker judges the model
    baseline_accuracy: float | None = None  # the same with no reuse, on the same pairs and seeds
    judge: str | None = None  # who read ``scores``: "checker" (every attribute) or "clip"
    scores: dict[str, float] | None = None  # every score the judge reads, in points
    baseline_scores: dict[str, float] | None = None  # the same with no reuse
    margins: dict[str, float] | None = None  # per score: how far its loss's upper limit lies above the mean
    pairs: int | None = None  # how many pairs these figures were read on
    lower_margins: dict[str, float] | None = None  # per score: how far its loss's lower limit lies below the mean

    @property
    def accuracy_loss(self) -> float | None:
        """Points of edited-attribute accuracy lost against no reuse (negative: gained)."""
        if self.accuracy is None or self.baseline_accuracy is None:
            return None
        return self.baseline_accuracy - self.accuracy

    @property
    def losses(self) -> dict[str, float]:
        """Points lost against no reuse on every score the judge reads (negative: gained)."""
        if self.scores is None or self.baseline_scores is None:
            return {}
        return {name: self.baseline_scores[name] - value for name, value in self.scores.items()}

    @property
    def worst_loss(self) -> float | None:
        return max(self.losses.values(), default=None)

    def _margin(self, name: str, side: Side) -> float:
        """The signed distance from a loss's mean to its confidence limit on ``side`` (0 where none was read)."""
        if side == "upper":
            return (self.margins or {}).get(name, 0.0)
        return -(self.lower_margins or {}).get(name, 0.0)

    def limits(self, side: Side) -> dict[str, float]:
        """Each score's loss at its one-sided confidence limit on ``side`` (the mean where no margin was read)."""
        return {name: loss + self._margin(name, side) for name, loss in self.losses.items()}

    def accuracy_loss_at(self, side: Side) -> float | None:
        """The edited attribute's loss at its confidence limit on ``side``."""
        loss = self.accuracy_loss
        return None if loss is None else loss + self._margin("edited", side)

    @property
    def upper_losses(self) -> dict[str, float]:
        """Each score's loss at its one-sided 95% upper confidence limit."""
        return self.limits("upper")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: round(v, 4) for k, v in asdict(self).items() if isinstance(v, float)}
        if self.pairs is not None:
            out["pairs"] = self.pairs
        if (loss := self.accuracy_loss) is not None:
            out["accuracy_loss"] = round(loss, 4)
        if self.judge is not None:
            out |= {"judge": self.judge, "losses": {k: round(v, 4) for k, v in self.losses.items()}}
        if self.margins is not None:
            out["upper_losses"] = {k: round(v, 4) for k, v in self.upper_losses.items()}
        return out


@dataclass(frozen=True)
class Bound:
    """What a plan must keep to be chosen; unset parts are not checked."""

    max_accuracy_loss: float | None = None  # points on every attribute the checker reads, paired against no reuse
    max_judge_loss: float | None = None  # points on every CLIP/SigLIP score, paired against no reuse
    min_psnr: float | None = None  # dB
    min_ssim: float | None = None

    @property
    def needs_checker(self) -> bool:
        return self.max_accuracy_loss is not None

    @property
    def needs_judge(self) -> bool:
        return self.max_judge_loss is not None

    def admits(self, figures: Figures, side: Side = "upper") -> bool:
        """Every bounded loss within the bound at its upper confidence limit (``side="lower"``: at its lower
        limit, i.e. whether more pairs might still show it); PSNR and SSIM by their means."""
        losses = figures.limits(side)
        if self.max_accuracy_loss is not None:
            edited = figures.accuracy_loss_at(side)
            bounded = [edited, *(losses.values() if figures.judge == "checker" else ())]
            if None in bounded or max(bounded) > self.max_accuracy_loss:
                return False
        if self.max_judge_loss is not None:
            worst = max(losses.values(), default=None) if figures.judge == "clip" else None
            if worst is None or worst > self.max_judge_loss:
                return False
        if self.min_psnr is not None and figures.psnr < self.min_psnr:
            return False
        return self.min_ssim is None or figures.ssim >= self.min_ssim

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def parse(cls, parts: Sequence[str]) -> Bound:
        """From ``accuracy=1``, ``judge=1``, ``psnr=30``, ``ssim=0.95`` (any of them); ValueError on anything else."""
        values: dict[str, float] = {}
        for part in parts:
            name, _, number = part.partition("=")
            if name not in _BOUND_KEYS or not number:
                raise ValueError(f"bound {part!r}: expected accuracy=POINTS, judge=POINTS, psnr=DB or ssim=VALUE")
            values[_BOUND_KEYS[name]] = float(number)
        return cls(**values)


# A plan must save at least this share of the transformer's compute: a hit costs its capture, lookup and
# Stage-2 overheads, so a plan that saves ~1% is slower than a miss (bench full run, 4 steps: 0.87x at 0.99).
MIN_SAVING = 0.05
MIN_PAIRS = 40  # a kind with fewer pairs is not calibrated: one pair would be worth over 2.5 points
CHECKER_BOUND = Bound(max_accuracy_loss=1.0)  # models the attribute checker judges
JUDGE_BOUND = Bound(max_judge_loss=1.0)  # every other model, judged by a CLIP or SigLIP folder
FIDELITY_BOUND = Bound(min_psnr=30.0, min_ssim=0.95)  # by request only: it refuses every Stage 1


def pair_looks(first: int, budget: int, growth: int = 4) -> list[int]:
    """The pair counts a sequential calibration reads a candidate at: ``first``, then ``growth`` times as many
    each look, up to ``budget`` (which is always the last look where it exceeds ``first``)."""
    looks = [first]
    while looks[-1] < budget:
        looks.append(min(looks[-1] * growth, budget))
    return looks


def confidence_z(looks: int, level: float = 0.95) -> float:
    """The normal quantile of a one-sided ``level`` limit with its error split evenly over ``looks``
    (Bonferroni): 1.645 for one look, 2.13 for three."""
    return NormalDist().inv_cdf(1 - (1 - level) / looks)


@dataclass(frozen=True)
class Measured:
    """One candidate plan and its figures."""

    plan: CalibratedPlan
    figures: Figures


def choose(measured: Sequence[Measured], bound: Bound) -> Measured | None:
    """The candidate within ``bound`` that saves at least ``MIN_SAVING`` and computes least (ties: the more
    accurate, then the more faithful, then the first); None where none is."""
    passing = [m for m in measured if bound.admits(m.figures) and m.figures.compute <= 1 - MIN_SAVING]
    return min(passing, key=lambda m: (m.figures.compute, -(m.figures.accuracy or 0.0), -m.figures.psnr), default=None)
