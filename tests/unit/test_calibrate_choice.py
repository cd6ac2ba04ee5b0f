"""Calibration picks the largest plan within the bound per edit kind, on a fake model whose tolerances are known."""

from dataclasses import dataclass, replace

import numpy as np
import pytest

from chorus.calibrate.candidates import candidate_plans, stage_lengths
from chorus.calibrate.measure import loss_margin
from chorus.calibrate.seed_variants import VariantRow, choose_variant
from chorus.calibrate.select import CHECKER_BOUND, FIDELITY_BOUND, MIN_PAIRS, Bound, Figures, confidence_z
from chorus.calibrate.sweep import KindReport, calibrate_kind, reuses_at_least
from chorus.reuse.calibration import CalibratedPlan


@dataclass
class FakeTolerance:
    """A fake model's measurement: the edit survives up to ``max_k1`` skipped steps and ``max_k2`` Stage-2
    steps (accuracy 100%, else 80%); compute falls with every reused step, so larger plans save more; the
    source's context changes nothing, a halo costs a little."""

    max_k1: int
    max_k2: int
    steps: int = 4

    def __call__(self, plan: CalibratedPlan, pairs: int = 60) -> Figures:
        kept = plan.k1 <= self.max_k1 and plan.k2 <= self.max_k2
        compute = 1.0 - (plan.k1 + 0.5 * plan.k2) / self.steps + 0.01 * plan.halo
        return Figures(
            compute=compute,
            psnr=40.0 if kept else 20.0,
            ssim=0.99 if kept else 0.6,
            accuracy=100.0 if kept else 80.0,
            baseline_accuracy=100.0,
        )


def run(tolerance, bound: Bound, pairs: int = 60) -> KindReport:
    report = KindReport("appearance", pairs=pairs, similarity=0.9, baseline_scores=None)
    return calibrate_kind(report, candidate_plans(4, reusable=3), 4, tolerance, bound)


@pytest.mark.parametrize(
    ("max_k1", "max_k2", "expected"),
    [(0, 1, (0, 1)), (0, 3, (0, 3)), (1, 1, (1, 1)), (1, 2, (1, 2)), (2, 0, (2, 0)), (3, 0, (3, 0))],
)
def test_the_largest_plan_within_the_bound_is_chosen(max_k1, max_k2, expected):
    for bound in (CHECKER_BOUND, FIDELITY_BOUND):
        chosen = run(FakeTolerance(max_k1, max_k2), bound).chosen
        assert chosen is not None and (chosen.plan.k1, chosen.plan.k2) == expected
        assert chosen.plan.halo == 0  # the same quality for more compute never wins
        assert bound.admits(chosen.figures)


def test_a_kind_no_candidate_keeps_is_a_miss():
    report = run(FakeTolerance(max_k1=-1, max_k2=-1), CHECKER_BOUND)
    tried = [m.plan for m in report.measured]
    assert report.chosen is None and len(tried) < len(candidate_plans(4, 3))
    assert all(any(reuses_at_least(c, t) for t in tried) for c in candidate_plans(4, 3))  # the rest: above those
    assert report.entry().plan is None and report.entry().pairs == 60


def test_a_plan_that_passes_by_the_luck_of_its_draw_is_not_chosen():
    """A fake lucky plan: k2=3 passes on the mean, but its clips differ from no reuse's on many pairs, so the
    upper confidence limit of its loss is far above the bound; the honest k2=1 keeps every pair."""
    honest = FakeTolerance(max_k1=0, max_k2=1)

    def lucky(plan: CalibratedPlan, pairs: int) -> Figures:
        figures = replace(honest(plan), margins={"edited": 0.0})
        if (plan.k1, plan.k2) != (0, 3):
            return figures
        return replace(figures, accuracy=100.0, psnr=40.0, ssim=0.99, margins={"edited": 8.0})

    chosen = run(lucky, CHECKER_BOUND).chosen
    assert (chosen.plan.k1, chosen.plan.k2) == (0, 1)


def test_the_margin_is_a_one_sided_95_percent_limit_of_the_paired_loss():
    flips = np.array([100.0] * 8 + [-100.0] * 8 + [0.0] * 32)  # 16 of 48 pairs differ, no net loss
    assert 13 < loss_margin(flips) < 14  # such a plan cannot show a 1-point bound on 48 pairs
    assert loss_margin(np.repeat(flips, 100)) < 1.5  # on 4800 pairs it could
    # 48 pairs that all agree show that few would differ, not none: 3.3 points (Agresti-Min), not 0
    assert loss_margin(np.zeros(48)) == pytest.approx(confidence_z(1) * 100 / 50)
    assert loss_margin(np.zeros(768)) < 1 < loss_margin(np.zeros(160))
    scores = np.array([0.5, -0.2, 0.1, 0.3])  # a continuous judge's score: z standard errors of the mean
    assert loss_margin(scores) == pytest.approx(confidence_z(1) * scores.std(ddof=1) / 2)
    assert loss_margin(scores, side="lower") == pytest.approx(loss_margin(scores))


def test_the_lower_limit_of_one_worse_pair_in_48_lies_below_a_1_point_bound():
    """One pair of 48 that got worse is 2.1 points on average, yet its lower limit is below 0: more pairs
    might still show such a plan within 1 point. Eight of 48 cannot be."""
    one = np.array([100.0] + [0.0] * 47)
    assert one.mean() - loss_margin(one, side="lower") < 0 < 1 < one.mean()
    eight = np.array([100.0] * 8 + [0.0] * 40)
    assert eight.mean() - loss_margin(eight, side="lower") > 1


def test_a_kind_with_too_few_pairs_is_not_calibrated():
    report = run(FakeTolerance(max_k1=0, max_k2=3), CHECKER_BOUND, pairs=MIN_PAIRS - 1)
    assert report.chosen is None and not report.measured  # not worth the compute: it could not be trusted
    assert report.entry().plan is None and report.entry().pairs == MIN_PAIRS - 1


def test_the_accuracy_bound_is_paired_against_no_reuse():
    lost = Figures(compute=0.5, psnr=40.0, ssim=0.99, accuracy=60.0, baseline_accuracy=61.5)
    assert lost.accuracy_loss == pytest.approx(1.5)
    assert not CHECKER_BOUND.admits(lost) and Bound(max_accuracy_loss=2.0).admits(lost)
    unjudged = Figures(compute=0.5, psnr=40.0, ssim=0.99)
    assert not CHECKER_BOUND.admits(unjudged) and FIDELITY_BOUND.admits(unjudged)
    assert not FIDELITY_BOUND.admits(Figures(compute=0.5, psnr=40.0, ssim=0.9))


def test_bounds_parse_from_the_command_line():
    assert Bound.parse(["psnr=32", "ssim=0.9"]) == Bound(min_psnr=32.0, min_ssim=0.9)
    assert Bound.parse(["accuracy=2"]).needs_checker
    with pytest.raises(ValueError, match="expected"):
        Bound.parse(["lpips=0.1"])


def test_candidates_leave_the_repair_steps_and_try_context_and_halo():
    plans = candidate_plans(4, reusable=3)
    assert all(0 < p.k1 + p.k2 <= 3 for p in plans)
    assert {(p.context, p.halo) for p in plans if p.k2} == {(True, 0), (True, 1), (False, 0), (False, 1)}
    assert [p for p in plans if not p.k2] == [CalibratedPlan(1, 0), CalibratedPlan(2, 0), CalibratedPlan(3, 0)]
    assert stage_lengths(50) == [0, 2, 5, 10, 15, 20, 25]  # coarse at many steps, up to half of them
    assert max(p.k1 for p in candidate_plans(50, reusable=49)) == 25
    pruned = candidate_plans(4, reusable=3, max_k1=0, max_k2=2)
    assert {(p.k1, p.k2) for p in pruned} == {(0, 1), (0, 2)} and len(pruned) == 8


def test_a_plan_that_saves_almost_nothing_is_not_chosen():
    """Within the bound but at compute 0.99: slower than a miss once a hit's overheads are paid."""

    def tiny_saving(plan: CalibratedPlan, pairs: int) -> Figures:
        kept = (plan.k1, plan.k2, plan.context, plan.halo) == (0, 1, True, 1)
        return Figures(0.99 if kept else 0.5, 40.0, 0.99, 100.0 if kept else 50.0, 100.0)

    assert run(tiny_saving, CHECKER_BOUND).chosen is None


def test_no_candidate_runs_that_the_pairs_masks_keep_from_saving_5_percent():
    """Where Stage 2 applies to no pair (no local mask: every token still computed), Stage-2 steps save
    nothing: only Stage-1 plans are measured; where regions are a tenth of the frame, Stage 2 is tried too."""
    every = FakeTolerance(max_k1=3, max_k2=3)
    no_local = calibrate_kind(
        KindReport("scene", 60, 0.9, None), candidate_plans(4, 3), 4, every, CHECKER_BOUND, share=1.0
    )
    assert no_local.measured and all(m.plan.k2 == 0 for m in no_local.measured)
    small = calibrate_kind(
        KindReport("scene", 60, 0.9, None), candidate_plans(4, 3), 4, every, CHECKER_BOUND, share=0.1
    )
    assert any(m.plan.k2 for m in small.measured)


def test_nothing_above_a_plan_not_shown_within_the_bound_is_read():
    """One step of Stage 1 loses nothing on average but cannot be shown within the bound (a wide margin); two
    steps would pass by the luck of a narrow one: the walk never reads it, so it cannot be chosen."""

    def undecided_then_lucky(plan: CalibratedPlan, pairs: int) -> Figures:
        if plan.k2:  # Stage 2 saves too little here
            return Figures(0.99, 40.0, 0.99, 100.0, 100.0, margins={"edited": 0.0})
        margin = 8.0 if plan.k1 == 1 else 0.0
        return Figures(1 - plan.k1 / 4, 40.0, 0.99, 100.0, 100.0, margins={"edited": margin})

    report = run(undecided_then_lucky, CHECKER_BOUND)
    assert report.chosen is None and CalibratedPlan(1, 0) in [m.plan for m in report.measured]
    assert all(m.plan.k1 <= 1 for m in report.measured)


def test_a_seed_variant_reuses_the_longest_stage1_that_keeps_it_new_saves_enough_and_loses_nothing():
    def row(k1: int, ratio: float, worst: float) -> VariantRow:
        return VariantRow(f"k1={k1}", 20.0 * ratio, ratio, 100.0, k1, {"all": worst, "speed": worst / 2})

    rows = [row(1, 0.95, 0.5), row(2, 0.9, 0.8), row(4, 0.85, 0.9), row(8, 0.6, 0.0)]
    assert choose_variant(rows, 16, 1.0) == 4  # k1=8 is nearly a copy of its source
    assert choose_variant(rows, 50, 1.0) == 4 and choose_variant(rows[:2], 50, 1.0) == 0  # 2 of 50 saves 4%
    assert choose_variant([row(1, 0.95, 0.5), row(2, 0.9, 3.3)], 16, 1.0) == 1  # k1=2 may lose 3.3 points
    assert choose_variant([row(2, 0.9, 3.3)], 16, None) == 2  # no checker: newness and saving alone
