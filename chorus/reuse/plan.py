"""The reuse plan: how many steps Stage 1 skips, how many Stage 2 runs on a region, the rest repaired.

Cases, deliberately distinct:
- identical prompt, same seed and negative prompt: the run is deterministic, so its stored trajectory
  *is* the answer: skip to the last stored latent (all steps when the final one is stored; no repair
  is needed because nothing differs).
- identical prompt, another seed (or negative prompt): the user asked for another sample. Stage 1
  reuses the source down to ``seed_variant_sigma`` (the engine swaps the source's noise for the target's seed,
  see staged.py), no Stage 2 (no token differs), the rest run in full so the new seed shapes the detail.
- edited prompt: Stage 1 and Stage 2 grow with similarity between ``min_similarity`` and
  ``full_similarity``; at least ``min_repair_steps`` steps that still move the latent run in full; the
  differing tokens are always recomputed (Stage 2 on their region, or no Stage 2 at all when no region
  is known). A region larger than ``max_region_fraction`` means the edit is global: Stage 2 is dropped
  and Stage 1 halved.
- edited prompt at a step count the model's calibration (``chorus calibrate``, chorus.reuse.calibration)
  measured: the edit's kinds (chorus.reuse.edit_kind: what its words change) pick the calibrated plan, the
  most conservative of them for an edit of several kinds; a kind measured without a plan, or not measured,
  misses. The plan applies whole at or above the similarity band it was measured on and shrinks below it;
  the mask refines it (Stage 2 runs only on a local mask: an appearance edit whose mask covers the frame
  keeps Stage 1 only), clipped to the stored latents and the repair budget.
- unrelated prompt, similarity below ``min_similarity``, or an uncalibrated edit at fewer than
  ``min_edit_steps`` steps: miss. In a few-step model the first step already fixes colour, shape and
  motion, so an edit that starts from the source's trajectory keeps the source's attributes (``chorus
  calibrate`` measures it per plan).
Similarity only scales how much is reused; it never decides that nothing needs recomputing.
Stages are placed by noise level (``StepGrid``): the same policy covers the same part of the trajectory
at any step count and on any sampler grid.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chorus.engine.capture import CaptureConfig
from chorus.engine.stages import StagePlan
from chorus.reuse.calibration import Calibration, KindsEntry
from chorus.reuse.edit_class import EditClass
from chorus.reuse.prompt_diff import DiffKind, PromptDiff
from chorus.vocab import Stage


@dataclass(frozen=True)
class ReusePlan(StagePlan):
    reason: str = "miss"
    similarity: float | None = None
    diff: PromptDiff | None = None
    region_fraction: float | None = None  # share of video tokens Stage 2 recomputes
    source_id: str | None = None  # cache entry / job the latents come from (set by the caller)
    edit_class: str | None = None  # an edit's mask reading (chorus.reuse.edit_class): local or global

    @property
    def amplified_tokens(self) -> tuple[int, ...]:
        return self.diff.target_tokens if self.diff else ()

    def recomputed_fraction_per_step(self) -> list[float]:
        share = {Stage.stage1: 0.0, Stage.stage2: self.region_fraction or 0.0, Stage.stage3: 1.0, Stage.full: 1.0}
        return [share[self.stage_of(i)] for i in range(self.num_steps)]

    @property
    def steps_saved(self) -> float:
        """Transformer steps not computed, counting a Stage-2 step as its unrecomputed share: the benefit
        the cache's eviction weighs."""
        return sum(1.0 - share for share in self.recomputed_fraction_per_step())

    def to_dict(self) -> dict[str, Any]:
        """For the job's ``metrics.cache``."""
        return {
            "hit": self.hit,
            "reason": self.reason,
            "source_id": self.source_id,
            "similarity": self.similarity,
            "diff": self.diff.to_dict() if self.diff else None,
            "stages": {Stage.stage1: self.stage1, Stage.stage2: self.stage2, Stage.stage3: self.stage3},
            "region_fraction": self.region_fraction,
            "edit_class": self.edit_class,
            "context": self.context,
            "halo": self.halo,
            "recomputed_fraction_per_step": self.recomputed_fraction_per_step(),
            "steps_saved": self.steps_saved,
        }


def stage2_applies(edit_class: str | None, region_fraction: float | None) -> bool:
    """A calibrated plan's Stage 2 runs on a local mask only (chorus.reuse.edit_class): a global one would
    recompute most of the frame for little saving, and a missing one names no region. The calibration
    measures its candidates by the same rule."""
    return edit_class == EditClass.local and bool(region_fraction)


class StepGrid:
    """A sampler's noise levels, read the way the policy places its stages."""

    MOVES = 1e-2  # a step whose sigma drops less than this leaves the latent as it was

    def __init__(self, num_steps: int, sigmas: Sequence[float] | None = None) -> None:
        self.sigmas = (
            [1 - i / num_steps for i in range(num_steps + 1)] if sigmas is None else [float(s) for s in sigmas]
        )
        if len(self.sigmas) != num_steps + 1:
            raise ValueError(f"{num_steps} steps need {num_steps + 1} sigmas, got {len(self.sigmas)}")

    def steps_down_to(self, sigma: float) -> int:
        """How many steps from the start end at a noise level >= ``sigma``."""
        return sum(1 for s in self.sigmas[1:] if s >= sigma - 1e-6)

    def reusable_steps(self, repair: int) -> int:
        """The most steps a hit may take from its source while ``repair`` steps that still move the latent
        remain to run in full at the end (a last step from sigma ~0.004 to 0 does not count)."""
        if repair <= 0:
            return len(self.sigmas) - 1
        moving = 0
        for i in range(len(self.sigmas) - 2, -1, -1):
            moving += self.sigmas[i] - self.sigmas[i + 1] > self.MOVES
            if moving == repair:
                return i
        return 0


@dataclass(frozen=True)
class Reach:
    """How many steps each kind of plan may take from its source on one grid (``ReusePolicy.reach``)."""

    budget: int  # any hit: the repair steps left to run in full at the end
    variant: int  # a seed variant's Stage 1
    stage1: int  # an uncalibrated edit's Stage 1
    stage2_end: int  # where that edit's Stage 2 ends (Stage 1 included)


@dataclass(frozen=True)
class ReusePolicy:
    min_similarity: float = 0.8  # edited prompts below this: miss
    full_similarity: float = 0.95  # edited prompts at or above this get the largest plan
    # Stage boundaries are noise levels, not step indices, so one policy means the same at 4, 8 or 50
    # steps: a stage that reaches down to sigma b covers the steps that end at a noise level >= b.
    # Edit plans: on the shipped model at 20 steps (bench/results/calibration.md) Stage 2 on the first
    # 10% of the trajectory kept the edited attribute as often as no reuse; more lost 13-15 points.
    stage1_sigma: float = 1.0  # an edit's Stage 1 reuses the source down to this sigma (1.0: none)
    stage2_sigma: float = 0.95  # then Stage 2 recomputes the region down to this sigma
    min_repair_steps: int = 1  # steps that still move the latent, run in full at the end of every hit
    # Seed variants: the user asked for a new sample, so Stage 1 may only go as far as keeps the variant about
    # as far from its source as a fresh sample (>= 0.8 of that distance, bench/results/calibration.md): on
    # the shipped model 4 of 50 steps did, no Stage 1 at 4 steps did. Below sigma 0.97 a 4-step run has no step.
    seed_variant_sigma: float = 0.97  # Stage 1 for an identical prompt with another seed or negative prompt
    replay_identical: bool = True  # identical prompt, seed and negative prompt: replay the stored trajectory
    max_region_fraction: float = 0.5  # a larger Stage-2 region drops Stage 2 and halves Stage 1
    min_edit_steps: int = 20  # uncalibrated edits at fewer steps are misses (at 4 steps every edit plan lost accuracy)
    calibrated: bool = True  # serve edits by the model's calibration where it has one (a Stage-1-only policy: no)

    @property
    def runs_stage2(self) -> bool:
        return self.stage2_sigma < self.stage1_sigma

    def reuses_edits(self, num_steps: int) -> bool:
        return num_steps >= self.min_edit_steps

    def reach(self, grid: StepGrid, scale: float = 1.0) -> Reach:
        """Where this policy's stages end on ``grid``, each within the repair budget; an edit's at ``scale``
        of their size (1: the largest, at or above ``full_similarity``; a less similar edit's boundaries move
        up from their sigmas towards pure noise). What a miss stores and what a hit runs both read this."""
        budget = grid.reusable_steps(self.min_repair_steps)

        def down_to(sigma: float) -> int:
            return min(grid.steps_down_to(sigma), budget)

        return Reach(
            budget,
            variant=down_to(self.seed_variant_sigma),
            stage1=down_to(1 - scale * (1 - self.stage1_sigma)),
            stage2_end=down_to(1 - scale * (1 - self.stage2_sigma)),
        )

    def plans_edits(self, num_steps: int, calibration: Calibration | None = None) -> bool:
        """Whether any plan at ``num_steps`` reuses the run of another prompt: by this policy's own edit
        plans, or a ``calibration`` holding a plan at that step count."""
        calibrated = calibration.end_steps(num_steps) if calibration is not None and self.calibrated else 0
        return self.reuses_edits(num_steps) or calibrated > 0

    def capture_for(
        self,
        capture: CaptureConfig,
        num_steps: int,
        sigmas: Sequence[float] | None = None,
        calibration: Calibration | None = None,
    ) -> CaptureConfig:
        """What a miss of ``num_steps`` should store: the latents a plan of this policy can start from or
        read (a replay the last, a seed variant the end of its Stage 1, an edit every step to the end of its
        largest Stage 2) and, where edits run a Stage 2 at this step count, maps at that Stage 2's first and
        last step (maps cost a recomputed query/key product per layer) and the self-attention context of
        every step a Stage 2 may run. Where ``calibration`` holds edit plans at this step count, also the
        latents to the end of the largest, the context of their Stage 2 and maps at every step: the
        calibration read its edit classes and regions off every step's maps. Steps named in ``capture`` win."""
        reach = self.reach(StepGrid(num_steps, sigmas))
        latents: set[int] = {num_steps} if self.replay_identical else set()
        if (variant := self.variant_steps(reach, num_steps, calibration)) > 0:
            latents.add(variant)
        maps: tuple[int, ...] = ()
        context: tuple[int, ...] = ()
        if self.reuses_edits(num_steps):
            k1, end = reach.stage1, reach.stage2_end
            latents.update(range(1, max(k1, end) + 1))  # less similar edits reuse less: any of these
            if self.runs_stage2 and end > k1:
                maps = tuple(sorted({k1, end - 1}))
                context = tuple(range(end))  # a less similar edit's Stage 2 starts earlier
        calibrated = min(calibration.end_steps(num_steps), reach.budget) if calibration is not None else 0
        latents.update(range(1, calibrated + 1))
        if calibrated:
            maps = tuple(range(num_steps)) if capture.map_steps is None else capture.map_steps
            context = tuple(sorted(set(context) | calibration.context_steps(num_steps)))
        elif maps and capture.map_steps is not None:
            maps = capture.map_steps
        return replace(
            capture,
            latent_steps=tuple(sorted(latents)) if capture.latent_steps is None else capture.latent_steps,
            map_steps=maps,
            context_steps=context if not context or capture.context_steps is None else capture.context_steps,
        )

    def variant_steps(self, reach: Reach, num_steps: int, calibration: Calibration | None) -> int:
        """A seed variant's Stage 1 at ``num_steps``: the calibration's where it measured seed variants there
        (how far a variant may follow its source depends on the model), else down to ``seed_variant_sigma``."""
        calibrated = calibration.variant_steps(num_steps) if calibration is not None and self.calibrated else None
        return reach.variant if calibrated is None else min(calibrated, reach.budget)

    def steps_from_words(
        self,
        similarity: float,
        same_prompt: bool,
        edit_kinds: Collection[str] | None,
        num_steps: int,
        sigmas: Sequence[float] | None = None,
        calibration: Calibration | None = None,
    ) -> int:
        """How many steps a plan from a source could reuse, told from the index row alone (similarity, whether
        the prompts are the same, the edit's kinds), before any tensor is fetched: what picks the source among
        the nearest entries (``plan_similar`` decides the plan itself). 0: none."""
        if self.dissimilar(similarity, num_steps) is not None:
            return 0
        grid = StepGrid(num_steps, sigmas)
        reach = self.reach(grid)
        if same_prompt:
            return self.variant_steps(reach, num_steps, calibration)
        calibrated = calibration.for_kinds(edit_kinds, num_steps) if calibration is not None else None
        if calibrated is not None:
            entry = calibrated.entry
            if entry is None or entry.plan is None:
                return 0
            return min(sum(self.shrink(entry.plan.k1, entry.plan.k2, similarity, entry.similarity)), reach.budget)
        if not self.reuses_edits(num_steps):
            return 0
        return self.reach(grid, self.edit_scale(similarity)).stage2_end

    def dissimilar(self, similarity: float, num_steps: int, source_id: str | None = None) -> ReusePlan | None:
        """The miss that similarity alone decides, before the prompts are diffed (an identical prompt
        scores ~1, so this never turns away a replay or a seed variant)."""
        if similarity >= self.min_similarity:
            return None
        reason = f"miss: similarity below {self.min_similarity}"
        return ReusePlan(num_steps, reason=reason, similarity=similarity, source_id=source_id)

    def plan(self, similarity: float, diff: PromptDiff, num_steps: int, **options: Any) -> ReusePlan:
        """The plan for a prompt at ``similarity`` whose ``diff`` from the source is known: a miss below
        ``min_similarity`` (``dissimilar``), else ``plan_similar``'s (its ``options``)."""
        if (miss := self.dissimilar(similarity, num_steps, options.get("source_id"))) is not None:
            return replace(miss, diff=diff)
        return self.plan_similar(similarity, diff, num_steps, **options)

    def plan_similar(
        self,
        similarity: float,
        diff: PromptDiff,
        num_steps: int,
        *,
        sigmas: Sequence[float] | None = None,
        same_inputs: bool = False,
        region_fraction: float | None = None,
        stored_steps: Collection[int] | None = None,
        source_id: str | None = None,
        edit_class: str | None = None,
        edit_kinds: Collection[str] | None = None,
        calibration: Calibration | None = None,
    ) -> ReusePlan:
        """The plan for a prompt that ``dissimilar`` did not turn away. ``sigmas``: the sampler's noise levels
        (``num_steps`` + 1, from ~1 down to 0; default: evenly spaced). ``same_inputs``: seed and negative
        prompt equal the source's. ``region_fraction``: share of the token grid the edit's region covers
        (None: no maps). ``stored_steps``: steps-done counts whose source latents exist (None: all).
        ``edit_kinds``: what the edit's words change (chorus.reuse.edit_kind; None: unknown), which pick its
        plan from ``calibration`` (the model card's) where that measured ``num_steps``; ``edit_class``: its
        mask's reading, which refines that plan."""
        grid = StepGrid(num_steps, sigmas)
        info = {"similarity": similarity, "diff": diff, "source_id": source_id}
        stored = set(range(1, num_steps + 1)) if stored_steps is None else set(stored_steps)
        reach = self.reach(grid)
        if diff.kind is DiffKind.IDENTICAL:
            if same_inputs and self.replay_identical:
                k1 = max((s for s in stored if s <= num_steps), default=0)
                return self._fit(ReusePlan(num_steps, k1, 0, "replay", **info), stored)
            variant = self.variant_steps(reach, num_steps, calibration)
            return self._fit(ReusePlan(num_steps, variant, 0, "seed variant", **info), stored)
        if diff.kind is DiffKind.UNRELATED:
            return ReusePlan(num_steps, reason="miss: unrelated prompt", **info)
        info["edit_class"] = edit_class
        calibrated = calibration.for_kinds(edit_kinds, num_steps) if calibration is not None else None
        if calibrated is not None:
            kinds = "+".join(sorted(edit_kinds or ())) or "unknown"
            return self._calibrated(calibrated, kinds, num_steps, reach.budget, region_fraction, stored, info)
        if not self.reuses_edits(num_steps):
            return ReusePlan(num_steps, reason=f"miss: edit at fewer than {self.min_edit_steps} steps", **info)
        edit = self.reach(grid, self.edit_scale(similarity))
        k1, k2 = edit.stage1, edit.stage2_end - edit.stage1
        reason = "edit"
        if not region_fraction:
            k2, reason = 0, "edit, no region"
        elif region_fraction > self.max_region_fraction:
            k1, k2, reason = k1 // 2, 0, f"edit, region {region_fraction:.2f} too large"
        return self._fit(ReusePlan(num_steps, k1, max(k2, 0), reason, region_fraction=region_fraction, **info), stored)

    def edit_scale(self, similarity: float) -> float:
        """The share of the largest edit plan this policy gives at ``similarity``: less similar prompts reuse
        less, linearly from ``min_similarity`` up to ``full_similarity``."""
        return min(1.0, (similarity - self.min_similarity) / (self.full_similarity - self.min_similarity))

    def shrink(self, k1: int, k2: int, similarity: float, floor: float | None) -> tuple[int, int]:
        """A calibrated plan at ``similarity``: whole at or above its band's ``floor``, below it Stage 1 and
        Stage 2 shrunk in proportion to where ``similarity`` lies between ``min_similarity`` and the floor."""
        if floor is None or similarity >= floor:
            return k1, k2
        span = floor - self.min_similarity
        scale = max(0.0, (similarity - self.min_similarity) / span) if span > 0 else 0.0
        return round(k1 * scale), round(k2 * scale)

    def _calibrated(
        self,
        calibrated: KindsEntry,
        kinds: str,
        num_steps: int,
        budget: int,
        region_fraction: float | None,
        stored: set[int],
        info: dict[str, Any],
    ) -> ReusePlan:
        """The calibrated plan of an edit's kinds, shrunk below its similarity band, Stage 2 kept on a local
        mask only, within the repair budget and the stored latents; a miss where a kind has no plan."""
        entry = calibrated.entry
        if entry is None or entry.plan is None:
            return ReusePlan(num_steps, reason=f"miss: no calibrated plan for a {calibrated.missing} edit", **info)
        reason = f"edit, calibrated {kinds} plan"
        k1, k2 = self.shrink(entry.plan.k1, entry.plan.k2, info["similarity"], entry.similarity)
        if (k1, k2) != (entry.plan.k1, entry.plan.k2):
            reason += f", shrunk below its similarity band {entry.similarity:.2f}"
        if k2 and not stage2_applies(info["edit_class"], region_fraction):
            k2, reason = 0, f"{reason}, {'no region' if not region_fraction else 'global mask'}"
        k2 = min(k1 + k2, budget) - min(k1, budget)
        plan = ReusePlan(
            num_steps,
            min(k1, budget),
            k2,
            reason,
            region_fraction=region_fraction,
            context=entry.plan.context,
            halo=entry.plan.halo,
            **info,
        )
        return self._fit(plan, stored)

    @staticmethod
    def _fit(plan: ReusePlan, stored: set[int]) -> ReusePlan:
        """Shrink the plan to the source latents that exist: Stage 1 needs the latent after k1 steps,
        Stage 2 the latent after each of its steps."""
        k1 = plan.stage1
        while k1 > 0 and k1 not in stored:
            k1 -= 1
        k2 = 0
        while k2 < plan.stage2 and k1 + k2 + 1 in stored:
            k2 += 1
        if (k1, k2) != (plan.stage1, plan.stage2):
            plan = replace(plan, stage1=k1, stage2=k2, reason=f"{plan.reason}, shrunk to the stored latents")
        if not plan.stage2:
            plan = replace(plan, region_fraction=None)
        return plan if plan.hit else replace(plan, reason=f"miss: {plan.reason} leaves nothing to reuse")
