"""One calibration at one step count: every candidate on every edit class, and the choice per class.

    report = calibrate(adapter, pairs, steps=4, bound=CHECKER_BOUND, judged=True)
    calibration = report.calibration(adapter.model_id, adapter.revision)

``judged``: the attribute checker reads the model's clips and the pairs say what each target must show
(vocabulary pairs on a model that draws the shapes world).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chorus.calibrate.candidates import candidate_plans
from chorus.calibrate.measure import PreparedPair, edited_accuracy, figures, prepare_pairs, run_group
from chorus.calibrate.pairs import EditPair
from chorus.calibrate.select import MIN_PAIRS, Bound, Figures, Measured, choose
from chorus.engine.capture import CaptureConfig
from chorus.engine.sampling import make_scheduler
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.reuse.calibration import CalibratedPlan, Calibration, ClassCalibration, StepCalibration
from chorus.reuse.plan import ReusePolicy, StepGrid
from chorus.reuse.region import RegionConfig

Progress = Callable[[str], None]
Measure = Callable[[CalibratedPlan], Figures]  # a candidate's figures on one edit class's pairs


@dataclass
class ClassReport:
    """One edit class: its pairs' count, no reuse's accuracy, every candidate measured, the choice."""

    edit_class: str
    pairs: int
    baseline_accuracy: float | None
    measured: list[Measured] = field(default_factory=list)
    chosen: Measured | None = None

    def entry(self) -> ClassCalibration:
        if self.chosen is None:
            return ClassCalibration(None, self.pairs)
        return ClassCalibration(self.chosen.plan, self.pairs, self.chosen.figures.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "edit_class": self.edit_class,
            "pairs": self.pairs,
            "baseline_accuracy": self.baseline_accuracy,
            "chosen": self.chosen.plan.label if self.chosen else None,
            "candidates": [{"plan": m.plan.label, **m.figures.to_dict()} for m in self.measured],
        }


@dataclass
class StepReport:
    """A calibration's result at one step count."""

    num_steps: int
    bound: Bound
    classes: list[ClassReport]
    seconds: float = 0.0

    def calibration(self, model_id: str, revision: str) -> Calibration:
        entries = {c.edit_class: c.entry() for c in self.classes}
        return Calibration(model_id, revision, {self.num_steps: StepCalibration(self.bound.to_dict(), entries)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.num_steps,
            "bound": self.bound.to_dict(),
            "seconds": round(self.seconds, 1),
            "classes": [c.to_dict() for c in self.classes],
        }


def by_class(prepared: Sequence[PreparedPair]) -> dict[str, list[PreparedPair]]:
    groups: dict[str, list[PreparedPair]] = {}
    for p in prepared:
        groups.setdefault(p.edit_class.value, []).append(p)
    return dict(sorted(groups.items()))


def calibrate_class(
    report: ClassReport,
    candidates: Sequence[CalibratedPlan],
    measure: Measure,
    bound: Bound,
    progress: Progress | None = None,
    min_pairs: int = MIN_PAIRS,
) -> ClassReport:
    """Fill ``report`` with every candidate's figures from ``measure`` and the one chosen within ``bound``
    (none for a class of fewer than ``min_pairs`` pairs: too few to tell a plan from chance)."""
    for candidate in candidates:
        report.measured.append(Measured(candidate, measure(candidate)))
        if progress is not None:
            progress(
                f"{report.edit_class} ({report.pairs} pairs) {candidate.label}: {report.measured[-1].figures.to_dict()}"
            )
    report.chosen = choose(report.measured, bound) if report.pairs >= min_pairs else None
    return report


def calibrate(
    adapter: VideoModelAdapter,
    pairs: Sequence[EditPair],
    steps: int,
    bound: Bound,
    *,
    judged: bool,
    seed: int = 0,
    policy: ReusePolicy | None = None,
    region: RegionConfig | None = None,
    tgaa: TGAAConfig | None = None,
    capture: CaptureConfig | None = None,
    batch_size: int = 48,
    progress: Progress | None = None,
    max_k1: int | None = None,
    max_k2: int | None = None,
) -> StepReport:
    """Measure every candidate plan on ``pairs`` at ``steps`` and choose one per edit class. ``policy``
    gives the repair steps a plan leaves; ``region``, ``tgaa`` and ``capture`` how a hit builds its region,
    amplifies Stage 2 and which maps a source stores: pass the service's (``ReuseConfig.from_settings``),
    so what is measured is what runs. ``max_k1``/``max_k2`` prune the candidates (see ``candidate_plans``)."""
    start = time.perf_counter()
    policy, region, tgaa = policy or ReusePolicy(), region or RegionConfig(), tgaa or TGAAConfig()
    prepared = prepare_pairs(adapter, pairs, steps, seed, region, capture or CaptureConfig(), batch_size)
    grid = StepGrid(steps, make_scheduler(adapter, steps).sigmas.tolist())
    candidates = candidate_plans(steps, grid.reusable_steps(policy.min_repair_steps), max_k1, max_k2)
    if progress is not None:
        progress(f"{len(prepared)} edit pairs, {len(candidates)} candidate plans at {steps} steps")
    classes = []
    for edit_class, group in by_class(prepared).items():
        baseline = run_group(adapter, group, None, tgaa, batch_size)
        accuracy = edited_accuracy(baseline.frames, group) if judged else None

        def measure(candidate: CalibratedPlan, group=group, baseline=baseline) -> Figures:
            return figures(run_group(adapter, group, candidate, tgaa, batch_size), baseline, group, judged)

        report = ClassReport(edit_class, len(group), accuracy)
        classes.append(calibrate_class(report, candidates, measure, bound, progress))
    return StepReport(steps, bound, classes, time.perf_counter() - start)


def format_report(report: StepReport) -> list[str]:
    """The report as text: per edit class every candidate's figures, then the choice."""
    lines = [f"{report.num_steps} steps, bound {report.bound.to_dict()}, {report.seconds:.0f} s"]
    for c in report.classes:
        base = "" if c.baseline_accuracy is None else f", no reuse {c.baseline_accuracy:.1f}%"
        lines.append(f"{c.edit_class} edits ({c.pairs} pairs{base}):")
        for m in c.measured:
            f = m.figures
            accuracy = "" if f.accuracy is None else f"  edited attr {f.accuracy:5.1f}% (loss {f.accuracy_loss:5.1f})"
            lines.append(
                f"  {m.plan.label:<30} compute {f.compute:.3f}  PSNR {f.psnr:5.1f}  SSIM {f.ssim:.3f}{accuracy}"
            )
        lines.append(f"  chosen: {c.chosen.plan.label if c.chosen else 'miss'}")
    return lines
