"""Calibration per edit kind on a fake model whose tolerances per kind are known: the choice per kind, the
refusal of a plan that leaks an unedited attribute, and the served 50-step plan (a long Stage 1 on an
appearance edit, smaller below its similarity band)."""

from dataclasses import dataclass, field

import pytest

from chorus.calibrate.candidates import candidate_plans
from chorus.calibrate.select import CHECKER_BOUND, MIN_SAVING, Figures
from chorus.calibrate.sweep import KindReport, StepReport, calibrate_kind, least_compute, reuses_at_least
from chorus.eval.checker import ATTRIBUTES
from chorus.reuse.calibration import CalibratedPlan
from chorus.reuse.plan import ReusePolicy
from chorus.reuse.prompt_diff import DiffKind, PromptDiff

STEPS = 50
EDIT = PromptDiff(DiffKind.EDITED, ("red",), ("blue",), (3,), (3,), 0.1)
EDITED = {"appearance": "color", "identity": "shape", "motion": "direction", "scene": "background", "layout": "size"}


@dataclass
class FakeKindModel:
    """A fake many-step model: an edit of each kind keeps its edited attribute up to ``max_k1[kind]`` steps
    of Stage 1 (no Stage 2 helps it), and from ``leaks[kind] = (attribute, k1)`` on, the source's value of
    an unedited attribute shows through 10 points of its clips. Compute falls with every reused step."""

    max_k1: dict[str, int]
    leaks: dict[str, tuple[str, int]] = field(default_factory=dict)

    def figures(self, kind: str, plan: CalibratedPlan) -> Figures:
        baseline = {a: 90.0 for a in (*ATTRIBUTES, "all", "edited")}
        scores = dict(baseline)
        if plan.k1 > self.max_k1[kind] or plan.k2:
            scores[EDITED[kind]] = scores["edited"] = scores["all"] = 60.0
        if kind in self.leaks and plan.k1 >= self.leaks[kind][1]:
            attribute = self.leaks[kind][0]
            scores[attribute] = scores["all"] = 80.0
        compute = 1.0 - (plan.k1 + 0.5 * plan.k2) / STEPS
        margins = dict.fromkeys(scores, 0.0)  # a fake whose every pair reads the same: no sampling noise
        return Figures(compute, 20.0, 0.5, scores["edited"], baseline["edited"], "checker", scores, baseline, margins)

    def calibrate(self, kind: str) -> KindReport:
        report = KindReport(kind, pairs=48, similarity=0.9, baseline_scores=None)
        candidates = candidate_plans(STEPS, reusable=49)
        return calibrate_kind(report, candidates, STEPS, lambda plan, pairs: self.figures(kind, plan), CHECKER_BOUND)


MODEL = FakeKindModel(
    max_k1={"appearance": 25, "scene": 20, "identity": 5, "motion": -1, "layout": 25},
    leaks={"layout": ("color", 10)},  # a size edit keeps the new size and, from 10 steps on, the old colour
)


@pytest.fixture(scope="module")
def calibration():
    reports = [MODEL.calibrate(kind) for kind in MODEL.max_k1]
    return StepReport(STEPS, CHECKER_BOUND, reports).calibration("fake", "r")


def plan(calibration, kinds, similarity=0.95, **kwargs):
    kwargs = {"region_fraction": 0.2, "edit_class": "local", **kwargs}
    return ReusePolicy().plan(similarity, EDIT, STEPS, edit_kinds=kinds, calibration=calibration, **kwargs)


def test_calibration_chooses_per_kind(calibration):
    chosen = {kind: entry.plan for kind, entry in calibration.steps[STEPS].kinds.items()}
    assert chosen["appearance"] == CalibratedPlan(25, 0)
    assert chosen["scene"] == CalibratedPlan(20, 0)
    assert chosen["identity"] == CalibratedPlan(5, 0)
    assert chosen["motion"] is None  # no plan kept the edited direction: motion edits miss
    assert {kind: plan(calibration, {kind}).stage1 for kind in ("appearance", "scene", "identity")} == {
        "appearance": 25,
        "scene": 20,
        "identity": 5,
    }
    assert not plan(calibration, {"motion"}).hit
    assert plan(calibration, {"appearance", "identity"}).stage1 == 5  # the most conservative of the two


def test_the_walk_measures_least_reuse_first_and_nothing_above_a_failure():
    assert MODEL.calibrate("appearance").chosen.plan == CalibratedPlan(25, 0)
    savers = [c for c in candidate_plans(STEPS, reusable=49) if least_compute(c, STEPS) <= 1 - MIN_SAVING]
    missed = MODEL.calibrate("motion")  # nothing passes: only the least reuse of each way of reusing is read
    tried = [m.plan for m in missed.measured]
    assert missed.chosen is None and len(tried) < len(savers) / 4
    assert not any(reuses_at_least(a, b) for a in tried for b in tried if a != b)  # none above another failure
    assert all(any(reuses_at_least(c, t) for t in tried) for c in savers)  # every other one is above one
    assert CalibratedPlan(2, 0) not in tried  # 2 of 50 steps saves 4% at most


def test_a_plan_that_leaks_an_unedited_attribute_is_refused(calibration):
    leaking = MODEL.figures("layout", CalibratedPlan(20, 0))
    assert leaking.accuracy_loss == 0.0  # the edited size holds
    assert leaking.losses["color"] == 10.0 and not CHECKER_BOUND.admits(leaking)
    assert calibration.steps[STEPS].kinds["layout"].plan == CalibratedPlan(5, 0)  # the longest before the leak


def test_a_50_step_plan_with_a_long_stage_1_on_an_appearance_edit_stays_within_the_calibrated_bound(calibration):
    served = plan(calibration, {"appearance"})
    assert (served.stage1, served.stage2) == (25, 0) and served.reason == "edit, calibrated appearance plan"
    figures = MODEL.figures("appearance", CalibratedPlan(served.stage1, served.stage2))
    assert CHECKER_BOUND.admits(figures) and max(figures.losses.values()) <= 1.0
    assert served.steps_saved == 25  # half the transformer's steps


def test_a_similarity_below_the_band_shrinks_the_plan(calibration):
    assert calibration.steps[STEPS].kinds["appearance"].similarity == 0.9
    shrunk = plan(calibration, {"appearance"}, similarity=0.85)
    assert 0 < shrunk.stage1 < 25 and "below its similarity band" in shrunk.reason
    assert CHECKER_BOUND.admits(MODEL.figures("appearance", CalibratedPlan(shrunk.stage1, 0)))
