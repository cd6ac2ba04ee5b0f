"""The reuse plan: how many steps Stage 1 skips, how many Stage 2 runs on a region, the rest repaired.

Cases, deliberately distinct:
- identical prompt, same seed and negative prompt: the run is deterministic, so its stored trajectory
  *is* the answer: skip to the last stored latent (all steps when the final one is stored; no repair
  is needed because nothing differs).
- identical prompt, another seed (or negative prompt): the user asked for another sample. Stage 1
  skips ``seed_variant_share`` of the steps (the engine swaps the source's noise for the target's seed,
  see staged.py), no Stage 2 (no token differs), the rest run in full so the new seed shapes the detail.
- edited prompt: Stage 1 and Stage 2 grow with similarity between ``min_similarity`` and
  ``full_similarity``; at least ``min_repair_steps`` run in full; the differing tokens are always
  recomputed (Stage 2 on their region, or no Stage 2 at all when no region is known). A region larger
  than ``max_region_fraction`` means the edit is global: Stage 2 is dropped and Stage 1 halved.
- unrelated prompt, similarity below ``min_similarity``, or an edit at fewer than ``min_edit_steps``
  steps: miss. In a few-step model the first step already fixes colour, shape and motion, so an edit
  that starts from the source's trajectory keeps the source's attributes (bench/reuse_sweep.py measures
  it per plan; at 4 steps every edit plan lost accuracy).
Similarity only scales how much is reused; it never decides that nothing needs recomputing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from chorus.engine.capture import CaptureConfig
from chorus.engine.prompt_diff import DiffKind, PromptDiff
from chorus.vocab import Stage


@dataclass(frozen=True)
class ReusePlan:
    num_steps: int
    stage1: int = 0  # k1: steps not run; the request starts from the source's latent after k1 steps
    stage2: int = 0  # k2: steps run on the region's tokens only, the rest taken from the source
    reason: str = "miss"
    similarity: float | None = None
    diff: PromptDiff | None = None
    region_fraction: float | None = None  # share of video tokens Stage 2 recomputes
    source_id: str | None = None  # cache entry / job the latents come from (set by the caller)

    @property
    def hit(self) -> bool:
        return self.stage1 + self.stage2 > 0

    @property
    def stage3(self) -> int:
        return self.num_steps - self.stage1 - self.stage2

    def stage_of(self, step: int) -> Stage:
        """The stage of a 0-based step: Stage.full for every step of a miss."""
        if not self.hit:
            return Stage.full
        if step < self.stage1:
            return Stage.stage1
        return Stage.stage2 if step < self.stage1 + self.stage2 else Stage.stage3

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
            "recomputed_fraction_per_step": self.recomputed_fraction_per_step(),
            "steps_saved": self.steps_saved,
        }


@dataclass(frozen=True)
class ReusePolicy:
    min_similarity: float = 0.8  # edited prompts below this: miss
    full_similarity: float = 0.95  # edited prompts at or above this get the largest plan
    # Edit plan sizes, measured on the shipped model (bench/reuse_sweep.py, 48 edit pairs at 20 steps):
    # Stage 2 alone on 10% of the steps kept the edited attribute as often as no reuse (87.5%); 25% of
    # the steps in Stage 2, or 10% in Stage 1 plus 10% in Stage 2, lost 13-15 points.
    stage1_share: float = 0.0  # largest Stage 1 for an edit, as a share of the steps
    stage2_share: float = 0.1  # largest Stage 2 for an edit
    min_repair_steps: int = 1  # full steps every edit or seed variant keeps at the end
    seed_variant_share: float = 0.5  # Stage 1 for an identical prompt with another seed or negative prompt
    replay_identical: bool = True  # identical prompt, seed and negative prompt: replay the stored trajectory
    max_region_fraction: float = 0.5  # a larger Stage-2 region drops Stage 2 and halves Stage 1
    min_edit_steps: int = 20  # edits at fewer steps are misses (at 4 steps every edit plan lost accuracy)

    def reuses_edits(self, num_steps: int) -> bool:
        return num_steps >= self.min_edit_steps

    def capture_for(self, capture: CaptureConfig, num_steps: int) -> CaptureConfig:
        """What a miss of ``num_steps`` should store: attention maps only locate an edit's Stage-2
        region, so a policy that runs no Stage 2 at that step count stores latents only (the maps
        cost a recomputed query/key product per layer)."""
        return capture if self.stage2_share > 0 and self.reuses_edits(num_steps) else capture.latents_only()

    def dissimilar(self, similarity: float, num_steps: int, source_id: str | None = None) -> ReusePlan | None:
        """The miss that similarity alone decides, before the prompts are diffed (an identical prompt
        scores ~1, so this never turns away a replay or a seed variant)."""
        if similarity >= self.min_similarity:
            return None
        reason = f"miss: similarity below {self.min_similarity}"
        return ReusePlan(num_steps, reason=reason, similarity=similarity, source_id=source_id)

    def plan(
        self,
        similarity: float,
        diff: PromptDiff,
        num_steps: int,
        *,
        same_inputs: bool = False,
        region_fraction: float | None = None,
        stored_steps: Collection[int] | None = None,
        source_id: str | None = None,
    ) -> ReusePlan:
        """``same_inputs``: seed and negative prompt equal the source's. ``region_fraction``: share of the
        token grid the edit's region covers (None: no maps). ``stored_steps``: steps-done counts whose
        source latents exist (None: all)."""
        if (miss := self.dissimilar(similarity, num_steps, source_id)) is not None:
            return replace(miss, diff=diff)
        info = {"similarity": similarity, "diff": diff, "source_id": source_id}
        stored = set(range(1, num_steps + 1)) if stored_steps is None else set(stored_steps)
        if diff.kind is DiffKind.IDENTICAL:
            if same_inputs and self.replay_identical:
                k1 = max((s for s in stored if s <= num_steps), default=0)
                return self._fit(ReusePlan(num_steps, k1, 0, "replay", **info), stored)
            k1 = min(round(self.seed_variant_share * num_steps), num_steps - self.min_repair_steps)
            return self._fit(ReusePlan(num_steps, max(k1, 0), 0, "seed variant", **info), stored)
        if diff.kind is DiffKind.UNRELATED:
            return ReusePlan(num_steps, reason="miss: unrelated prompt", **info)
        if not self.reuses_edits(num_steps):
            return ReusePlan(num_steps, reason=f"miss: edit at fewer than {self.min_edit_steps} steps", **info)
        scale = min(1.0, (similarity - self.min_similarity) / (self.full_similarity - self.min_similarity))
        budget = max(num_steps - self.min_repair_steps, 0)
        k1 = min(round(self.stage1_share * num_steps * scale), budget)
        k2 = min(round(self.stage2_share * num_steps * scale), budget - k1)
        reason = "edit"
        if not region_fraction:
            k2, reason = 0, "edit, no region"
        elif region_fraction > self.max_region_fraction:
            k1, k2, reason = k1 // 2, 0, f"edit, region {region_fraction:.2f} too large"
        return self._fit(ReusePlan(num_steps, k1, k2, reason, region_fraction=region_fraction, **info), stored)

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
