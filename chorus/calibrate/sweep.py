"""One calibration at one step count: the candidates on every edit kind, and the choice per kind.

    report = calibrate(adapter, pairs, steps=4, bound=CHECKER_BOUND, judge=CheckerJudge(), embedder=embedder)
    calibration = report.calibration(adapter.model_id, adapter.revision)

Pairs are grouped by the kinds the service's classifier reads off their words (what a hit's plan is picked
by); a pair of several kinds or none calibrates no kind (a multi-kind edit takes the most conservative of
its kinds' plans). ``judge`` reads the clips (``chorus.calibrate.judge``; None: PSNR/SSIM only).
Candidates run from the least reuse up. One that is not shown within the bound rules out every candidate
that reuses at least as many steps of each stage in the same way (``reuses_at_least``): reusing more of a
source's trajectory has never brought an edit back within the bound in our sweeps
(bench/results/calibration_kinds.md). Along one chain of growing plans that is a fixed-sequence test (no
more than the 5% a single candidate is read at); the walk has a chain per way of reusing, so it also keeps
down how many candidates get a chance to pass by luck, and at 50 steps it reads the frontier, not the ~170
candidates. One that could not compute less than the plan chosen so far is skipped. With ``max_pairs``
above the pairs given and a source of more (``more_pairs``), a candidate whose lower confidence limits are
within the bound but whose upper limits are not is read again on more pairs (``pair_looks``, ``KindPool``).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chorus.calibrate.candidates import candidate_plans
from chorus.calibrate.judge import Judge
from chorus.calibrate.measure import PreparedPair, prepare_pairs
from chorus.calibrate.pairs import EditPair
from chorus.calibrate.pool import KindPool, MorePairs
from chorus.calibrate.select import (
    MIN_PAIRS,
    MIN_SAVING,
    Bound,
    Figures,
    Measured,
    choose,
    confidence_z,
    pair_looks,
)
from chorus.engine.capture import CaptureConfig
from chorus.engine.sampling import sigma_grid
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.reuse.calibration import CalibratedPlan, Calibration, KindCalibration, StepCalibration
from chorus.reuse.edit_kind import EditKindClassifier, PhraseEmbedder
from chorus.reuse.plan import ReusePolicy, StepGrid, stage2_applies
from chorus.reuse.region import RegionConfig

Progress = Callable[[str], None]
Measure = Callable[[CalibratedPlan, int], Figures]  # a candidate's figures on one edit kind's first N pairs
# More vocabulary pairs of an edit kind: (kind, about how many, which round of growth) -> pairs.
PairSource = Callable[[str, int, int], Sequence[EditPair]]


@dataclass
class KindReport:
    """One edit kind: its pairs' count and similarity floor, no reuse's scores, the bound's noise floor (no
    reuse at other seeds, measured as a candidate), the candidates measured, the choice."""

    kind: str
    pairs: int
    similarity: float | None
    baseline_scores: dict[str, float] | None
    measured: list[Measured] = field(default_factory=list)
    chosen: Measured | None = None
    noise_floor: Figures | None = None

    def entry(self) -> KindCalibration:
        similarity = round(self.similarity, 4) if self.similarity is not None else None
        if self.chosen is None:
            return KindCalibration(None, self.pairs, similarity)
        return KindCalibration(self.chosen.plan, self.pairs, similarity, self.chosen.figures.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "pairs": self.pairs,
            "similarity": self.similarity,
            "baseline_scores": self.baseline_scores,
            "chosen": self.chosen.plan.label if self.chosen else None,
            "noise_floor": self.noise_floor.to_dict() if self.noise_floor else None,
            "candidates": [{"plan": m.plan.label, **m.figures.to_dict()} for m in self.measured],
        }


@dataclass
class StepReport:
    """A calibration's result at one step count."""

    num_steps: int
    bound: Bound
    kinds: list[KindReport]
    unread: int = 0  # edit pairs of several kinds or none: no kind's cell
    seconds: float = 0.0

    def calibration(self, model_id: str, revision: str) -> Calibration:
        entries = {k.kind: k.entry() for k in self.kinds}
        return Calibration(model_id, revision, {self.num_steps: StepCalibration(self.bound.to_dict(), entries)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.num_steps,
            "bound": self.bound.to_dict(),
            "seconds": round(self.seconds, 1),
            "unread_pairs": self.unread,
            "kinds": [k.to_dict() for k in self.kinds],
        }


def by_words(pairs: Sequence[EditPair], embedder: PhraseEmbedder) -> tuple[dict[str, list[EditPair]], int]:
    """The pairs whose words read as each single kind (the service's classifier), and how many read as
    several kinds or none."""
    classifier = EditKindClassifier(embedder)
    groups: dict[str, list[EditPair]] = {}
    for pair in pairs:
        kinds = classifier.classify(pair.source, pair.target)
        if len(kinds) == 1:
            groups.setdefault(str(next(iter(kinds))), []).append(pair)
    return dict(sorted(groups.items())), len(pairs) - sum(len(g) for g in groups.values())


def capture_for(capture: CaptureConfig, candidates: Sequence[CalibratedPlan]) -> CaptureConfig:
    """``capture`` with the source's keys and values stored only at the steps a candidate's Stage 2 runs with
    the source's context (every step's would be ~80 MB a pair at 50 steps; none where no candidate reads
    them, e.g. ``--max-k2 0``). ``prepare_pairs`` adds every step's latent."""
    reads = sorted({step for c in candidates if c.context and c.k2 for step in range(c.k1, c.k1 + c.k2)})
    return replace(capture, context_steps=tuple(reads))


def least_compute(plan: CalibratedPlan, num_steps: int, stage2_share: float = 0.0) -> float:
    """The least share of the compute ``plan`` can take: its Stage 1 steps computing nothing and its Stage 2
    steps ``stage2_share`` of the tokens (0: nothing; a kind's pairs' mean, ``stage2_share``)."""
    return (num_steps - plan.k1 - plan.k2 * (1.0 - stage2_share)) / num_steps


def stage2_share(pairs: Sequence[PreparedPair]) -> float:
    """The mean share of tokens a Stage-2 step still computes on ``pairs``: the region where Stage 2 applies
    (``stage2_applies``), all of them where it does not."""
    shares = []
    for p in pairs:
        fraction = p.region.fraction if p.region is not None else None
        shares.append(fraction if fraction is not None and stage2_applies(p.edit_class, fraction) else 1.0)
    return sum(shares) / len(shares)


def reuses_at_least(plan: CalibratedPlan, other: CalibratedPlan) -> bool:
    """``plan`` reuses every step ``other`` does: as long a Stage 1, and as long a Stage 2 with the same context
    and halo (any Stage 2, where ``other`` has none)."""
    same_stage2 = other.k2 == 0 or (plan.context, plan.halo) == (other.context, other.halo)
    return plan.k1 >= other.k1 and plan.k2 >= other.k2 and same_stage2


def calibrate_kind(
    report: KindReport,
    candidates: Sequence[CalibratedPlan],
    num_steps: int,
    measure: Measure,
    bound: Bound,
    progress: Progress | None = None,
    min_pairs: int = MIN_PAIRS,
    looks: Sequence[int] | None = None,
    share: float = 0.0,
) -> KindReport:
    """Fill ``report`` with candidates' figures from ``measure``, least reuse first, and the one chosen within
    ``bound``. Skipped: candidates that could not save ``MIN_SAVING`` or compute less than the choice so far,
    and those that reuse at least as much as one that saved enough and was not shown within the bound. A kind of fewer
    than ``min_pairs`` pairs is measured by nothing: too few to tell a plan from chance. ``looks``: the pair
    counts a candidate may be read at (default: the kind's pairs, once); it is read again only while its lower
    confidence limits are within the bound and its upper limits are not. ``share``: what a Stage-2 step still computes
    (``stage2_share`` of the kind's pairs; 0 assumes nothing), so that no candidate runs that could not
    save ``MIN_SAVING`` on these pairs' masks."""
    if report.pairs < min_pairs:
        return report
    # A candidate that cannot save MIN_SAVING even if its Stage 2 computed nothing is never chosen.
    savers = [c for c in candidates if least_compute(c, num_steps, share) <= 1 - MIN_SAVING]
    failed: list[CalibratedPlan] = []
    for candidate in sorted(savers, key=lambda c: -least_compute(c, num_steps, share)):
        to_beat = report.chosen.figures.compute if report.chosen is not None else None
        if to_beat is not None and least_compute(candidate, num_steps, share) >= to_beat:
            continue
        if any(reuses_at_least(candidate, lost) for lost in failed):
            continue
        figures = read_sequentially(candidate, measure, bound, looks or [report.pairs], to_beat)
        report.measured.append(Measured(candidate, figures))
        if progress is not None:
            progress(f"{report.kind} {candidate.label}: {figures.to_dict()}")
        if saves_enough(figures, to_beat) and not bound.admits(figures):  # read to a decision, not shown within
            failed.append(candidate)
        report.chosen = choose(report.measured, bound)
    return report


def saves_enough(figures: Figures, to_beat: float | None) -> bool:
    """Whether a candidate of these figures could be chosen on compute: it saves ``MIN_SAVING`` and computes
    less than ``to_beat`` (the plan chosen so far, if any)."""
    return figures.compute <= 1 - MIN_SAVING and (to_beat is None or figures.compute < to_beat)


def read_sequentially(
    candidate: CalibratedPlan, measure: Measure, bound: Bound, looks: Sequence[int], to_beat: float | None = None
) -> Figures:
    """``candidate``'s figures at the first of ``looks`` that decides it: within the bound at its limits, or
    the last look (or the last pair there is). It gets no more pairs once some loss's lower confidence limit
    lies outside the bound (stopping for futility never lets a plan through), or saves less than
    ``MIN_SAVING`` or no more than ``to_beat`` (the plan chosen so far): it could not be chosen."""
    for count in looks:
        figures = measure(candidate, count)
        read = figures.pairs if figures.pairs is not None else count
        hopeless = not saves_enough(figures, to_beat) or not bound.admits(figures, side="lower")
        if bound.admits(figures) or hopeless or read < count:
            break
    return figures


def calibrate(
    adapter: VideoModelAdapter,
    pairs: Sequence[EditPair],
    steps: int,
    bound: Bound,
    *,
    judge: Judge | None,
    embedder: PhraseEmbedder,
    seed: int = 0,
    policy: ReusePolicy | None = None,
    region: RegionConfig | None = None,
    tgaa: TGAAConfig | None = None,
    capture: CaptureConfig | None = None,
    batch_size: int = 48,
    progress: Progress | None = None,
    max_k1: int | None = None,
    max_k2: int | None = None,
    max_pairs: int | None = None,
    more_pairs: PairSource | None = None,
) -> StepReport:
    """Measure candidate plans on ``pairs`` at ``steps`` and choose one per edit kind. ``policy`` gives the
    repair steps a plan leaves; ``region``, ``tgaa`` and ``capture`` how a hit builds its region, amplifies
    Stage 2 and which maps a source stores: pass the service's (``ReuseConfig.from_settings``), so what is
    measured is what runs; ``embedder`` the cache key's (kinds and similarity are read with it).
    ``max_k1``/``max_k2`` prune the candidates (see ``candidate_plans``). ``max_pairs``: the pairs a kind may
    grow to for a candidate still undecided, drawn from ``more_pairs`` (default: no growth)."""
    start = time.perf_counter()
    policy, region, tgaa = policy or ReusePolicy(), region or RegionConfig(), tgaa or TGAAConfig()
    grid = StepGrid(steps, sigma_grid(adapter, steps))
    candidates = candidate_plans(steps, grid.reusable_steps(policy.min_repair_steps), max_k1, max_k2)
    capture = capture_for(capture or CaptureConfig(), candidates)
    groups, unread = by_words(pairs, embedder)
    if progress is not None:
        sizes = ", ".join(f"{kind} {len(group)}" for kind, group in groups.items())
        progress(f"{len(pairs)} pairs ({sizes}; {unread} of several kinds or none), {len(candidates)} candidates")

    def prepare(kind: str, drawn: Sequence[EditPair], noise_seed: int) -> list[PreparedPair]:
        """``drawn``'s sources run with capture; those that are edits of exactly ``kind``."""
        fresh = prepare_pairs(adapter, drawn, steps, noise_seed, region, capture, batch_size, embedder)
        return [p for p in fresh if p.kinds == {kind}]

    def grower(kind: str, kind_seed: int) -> MorePairs | None:
        """More prepared pairs of ``kind``: fresh pairs from ``more_pairs`` and fresh noise each round."""
        if more_pairs is None:
            return None
        rounds = itertools.count(1)

        def more(count: int) -> list[PreparedPair]:
            round_ = next(rounds)
            return prepare(kind, more_pairs(kind, count, round_), kind_seed + 7919 * round_)

        return more

    kinds = []
    # One kind's sources at a time: a capture holds every step's latents and context (~80 MB a pair at 50
    # steps on the shipped base), so all kinds' at once would not fit beside a grown pool.
    for offset, (kind, drawn) in enumerate(groups.items()):
        kind_seed = seed + 104729 * offset
        group = prepare(kind, drawn, kind_seed)
        unread += len(drawn) - len(group)
        if not group:
            continue
        report = KindReport(kind, len(group), min(p.similarity for p in group), None)
        kinds.append(report)
        if len(group) < MIN_PAIRS:
            continue
        looks = pair_looks(len(group), max(max_pairs or 0, len(group)))
        z = confidence_z(len(looks))
        pool = KindPool(adapter, group, judge, tgaa, batch_size, grower(kind, kind_seed))
        report.noise_floor = pool.noise_floor(z)
        if progress is not None:
            progress(f"{kind} noise floor (no reuse, other seeds): {report.noise_floor.to_dict()}")
        measure = functools.partial(KindPool.measure, pool, z=z)
        calibrate_kind(report, candidates, steps, measure, bound, progress, looks=looks, share=stage2_share(group))
        report.pairs, report.similarity = len(pool.pairs), min(p.similarity for p in pool.pairs)
        if report.measured:
            report.baseline_scores = report.measured[0].figures.baseline_scores
        del pool, measure  # its captures go before the next kind's sources run
    return StepReport(steps, bound, kinds, unread, time.perf_counter() - start)


def format_report(report: StepReport) -> list[str]:
    """The report as text: per edit kind the candidates measured, then the choice."""
    lines = [f"{report.num_steps} steps, bound {report.bound.to_dict()}, {report.seconds:.0f} s"]
    lines.append(f"{report.unread} edit pairs of several kinds or none calibrate no kind")
    for k in report.kinds:
        lines.append(f"{k.kind} edits ({k.pairs} pairs, similarity >= {k.similarity:.3f}):")
        rows = [("noise floor (resampled)", k.noise_floor)] if k.noise_floor else []
        for label, f in rows + [(m.plan.label, m.figures) for m in k.measured]:
            worst = "" if f.worst_loss is None else f"  worst loss {f.worst_loss:5.1f}"
            upper = max(f.upper_losses.values(), default=None)
            worst += "" if upper is None else f" (upper limit {upper:5.1f})"
            accuracy = "" if f.accuracy is None else f"  edited attr {f.accuracy:5.1f}% (loss {f.accuracy_loss:5.1f})"
            lines.append(
                f"  {label:<30} compute {f.compute:.3f}  PSNR {f.psnr:5.1f}  SSIM {f.ssim:.3f}{accuracy}{worst}"
            )
        if k.pairs < MIN_PAIRS:
            lines.append(f"  not calibrated: fewer than {MIN_PAIRS} pairs")
        else:
            lines.append(f"  chosen: {k.chosen.plan.label if k.chosen else 'miss'}")
    return lines
