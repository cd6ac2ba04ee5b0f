"""A model's calibration: the edit plan measured to keep quality, per edit kind and step count.

``chorus calibrate`` measures candidate reuse plans on edit pairs of each kind (chorus.reuse.edit_kind:
what the words change) and writes the largest plan within its bound into the model folder as
``calibration.json``; ``card_calibration`` reads it for a model card and the reuse policy serves an edit
of calibrated kinds at a calibrated step count by it. A calibration holds for the model revision it was
measured on only: a card of another revision ignores it. Torch-free.

    {"model_id": "chorus-shapes", "revision": "...",
     "steps": {"4": {"bound": {"max_accuracy_loss": 1.0},
                     "kinds": {"appearance": {"plan": {"k1": 2, "k2": 0, "context": true, "halo": 0},
                                              "pairs": 48, "similarity": 0.93, "measured": {...}},
                               "identity": {"plan": null, "pairs": 48, "similarity": 0.94}}}}}

``"seed_variants": {"50": {"k1": 0, "prompts": 48, "measured": [...]}}`` holds, per step count, the Stage 1
a seed variant (identical prompt, another seed) reuses (0: none, a miss), chosen by ``chorus calibrate
--seed-variants``; a step count without one takes the policy's ``seed_variant_sigma``.

A kind whose ``plan`` is null was calibrated and no candidate kept within the bound: its edits miss, as do
edits of a kind the step count's calibration did not measure. ``similarity`` is the floor of the band the
plan was measured on (its pairs' lowest cache-key similarity): a less similar edit gets a smaller plan.
Files of the earlier per-class layout (``"classes": {"local": ..., "global": ...}``, read off a mask's
size) are still read: their step counts count as calibrated with no kind measured, so edits at them miss
until ``chorus calibrate`` measures the kinds.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chorus.models.catalog import ModelCard

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class CalibratedPlan:
    """A reuse plan's shape, as ``chorus.reuse.plan.ReusePlan`` takes it: k1 steps of Stage 1, k2 of
    Stage 2 on the edit's region, with or without the source's context, and a recomputed halo."""

    k1: int
    k2: int
    context: bool = True
    halo: int = 0

    @property
    def label(self) -> str:
        stage2 = f" context={'on' if self.context else 'off'} halo={self.halo}" if self.k2 else ""
        return f"k1={self.k1} k2={self.k2}{stage2}"


@dataclass(frozen=True)
class KindCalibration:
    """One edit kind at one step count: the chosen plan (None: none kept within the bound, a miss), how
    many pairs it was measured on, the floor of their similarity band, and the chosen plan's measured
    figures (``chorus.calibrate.select.Figures``)."""

    plan: CalibratedPlan | None
    pairs: int
    similarity: float | None = None  # the plan applies whole at or above this cache-key similarity
    measured: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> KindCalibration:
        plan = raw.get("plan")
        similarity = raw.get("similarity")
        return cls(
            CalibratedPlan(**plan) if plan else None,
            int(raw["pairs"]),
            float(similarity) if similarity is not None else None,
            raw.get("measured"),
        )


@dataclass(frozen=True)
class StepCalibration:
    """Every edit kind calibrated at one step count, under one bound."""

    bound: dict[str, float]
    kinds: dict[str, KindCalibration]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepCalibration:
        # An earlier per-class file ("classes") has no kind measured: its step count's edits miss.
        kinds = {name: KindCalibration.from_dict(entry) for name, entry in raw.get("kinds", {}).items()}
        return cls(dict(raw["bound"]), kinds)

    @property
    def plans(self) -> list[CalibratedPlan]:
        return [k.plan for k in self.kinds.values() if k.plan is not None]


@dataclass(frozen=True)
class VariantCalibration:
    """Seed variants at one step count: the Stage 1 they reuse (0: a miss), on how many prompts it was
    measured, and the sweep's rows (``chorus.calibrate.seed_variants.VariantRow``)."""

    k1: int
    prompts: int
    measured: list[dict[str, Any]] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VariantCalibration:
        return cls(int(raw["k1"]), int(raw["prompts"]), raw.get("measured"))


@dataclass(frozen=True)
class KindsEntry:
    """What a calibration says for an edit of several kinds: the most conservative of their plans (the
    one that reuses fewest steps) and the highest similarity floor among them; ``missing`` names a kind
    with no plan (then ``entry`` is None: a miss)."""

    entry: KindCalibration | None
    missing: str | None = None


@dataclass(frozen=True)
class Calibration:
    """What ``calibration.json`` holds for one model revision; ``for_kinds`` is what the policy reads."""

    model_id: str
    revision: str
    steps: dict[int, StepCalibration] = field(default_factory=dict)
    seed_variants: dict[int, VariantCalibration] = field(default_factory=dict)

    def variant_steps(self, num_steps: int) -> int | None:
        """The Stage 1 a seed variant at ``num_steps`` reuses (None: not calibrated there)."""
        entry = self.seed_variants.get(num_steps)
        return entry.k1 if entry is not None else None

    def entry(self, kind: str, num_steps: int) -> KindCalibration | None:
        """The calibration of ``kind`` edits at ``num_steps`` steps; None where none was measured."""
        at = self.steps.get(num_steps)
        return at.kinds.get(kind) if at is not None else None

    def for_kinds(self, kinds: Collection[str] | None, num_steps: int) -> KindsEntry | None:
        """The plan for an edit of ``kinds`` at ``num_steps`` (None: this step count was not calibrated,
        the policy's own rules apply). An edit whose kinds are unknown or empty, or of a kind measured
        without a plan or not measured at all, misses."""
        if num_steps not in self.steps:
            return None
        if not kinds:
            return KindsEntry(None, "unknown")
        entries = {kind: self.entry(kind, num_steps) for kind in sorted(kinds)}
        for kind, entry in entries.items():
            if entry is None or entry.plan is None:
                return KindsEntry(None, kind)
        chosen = min(entries.values(), key=lambda e: (e.plan.k1 + e.plan.k2, e.plan.k1, -e.plan.halo, e.plan.context))
        floors = [e.similarity for e in entries.values() if e.similarity is not None]
        return KindsEntry(replace(chosen, similarity=max(floors, default=None)))

    def end_steps(self, num_steps: int) -> int:
        """The last step any calibrated plan at ``num_steps`` reads a source latent of (0: none): what a
        miss of that step count must store."""
        at = self.steps.get(num_steps)
        return max((p.k1 + p.k2 for p in at.plans), default=0) if at is not None else 0

    def context_steps(self, num_steps: int) -> set[int]:
        """The 0-based steps a calibrated plan at ``num_steps`` runs Stage 2 with the source's context on."""
        at = self.steps.get(num_steps)
        plans = at.plans if at is not None else []
        return {step for p in plans if p.context for step in range(p.k1, p.k1 + p.k2)}

    def merged(self, other: Calibration) -> Calibration:
        """This calibration with ``other``'s added: a step count only one has is kept; at a step count both
        have under one bound, ``other``'s kinds are added to this one's (a ``--kind`` run keeps the kinds
        it did not run), and under another bound ``other``'s replaces it whole."""
        steps = dict(self.steps)
        for n, at in other.steps.items():
            earlier = steps.get(n)
            same_bound = earlier is not None and earlier.bound == at.bound
            steps[n] = StepCalibration(at.bound, {**earlier.kinds, **at.kinds}) if same_bound else at
        return Calibration(self.model_id, self.revision, steps, {**self.seed_variants, **other.seed_variants})

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "revision": self.revision,
            "steps": {str(n): asdict(at) for n, at in sorted(self.steps.items())},
            "seed_variants": {str(n): asdict(v) for n, v in sorted(self.seed_variants.items())},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibration:
        steps = {int(n): StepCalibration.from_dict(at) for n, at in raw.get("steps", {}).items()}
        variants = {int(n): VariantCalibration.from_dict(v) for n, v in raw.get("seed_variants", {}).items()}
        return cls(raw["model_id"], raw["revision"], steps, variants)


def read_calibration(folder: Path, model_id: str, revision: str) -> Calibration | None:
    """The calibration in ``folder`` if it was measured on ``model_id`` at ``revision``; else None."""
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    calibration = Calibration.from_dict(json.loads(path.read_text()))
    if (calibration.model_id, calibration.revision) != (model_id, revision):
        return None
    return calibration


def card_calibration(card: ModelCard) -> Calibration | None:
    """The calibration in a model card's folder, if it was measured on the card's revision."""
    return read_calibration(card.path, card.model_id, card.revision)


def write_calibration(folder: Path, calibration: Calibration) -> Path:
    """Write ``calibration`` into ``folder``, keeping the step counts (and seed-variant cells) an earlier
    calibration of the same revision measured and this one did not; returns the file's path."""
    earlier = read_calibration(folder, calibration.model_id, calibration.revision)
    if earlier is not None:
        calibration = earlier.merged(calibration)
    path = folder / CALIBRATION_FILE
    path.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")
    return path
