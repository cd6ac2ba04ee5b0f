"""A model's calibration: the edit plan measured to keep quality, per edit class and step count.

``chorus calibrate`` measures candidate reuse plans on edit pairs and writes the largest one within its
bound into the model folder as ``calibration.json``; ``card_calibration`` reads it for a model card and the
reuse policy serves an edit of a calibrated (class, step count) by it. A calibration holds for the model
revision it was measured on only: a card of another revision ignores it. Torch-free.

    {"model_id": "chorus-shapes", "revision": "...",
     "steps": {"4": {"bound": {"max_accuracy_loss": 1.0},
                     "classes": {"local": {"plan": {"k1": 0, "k2": 1, "context": true, "halo": 0},
                                           "pairs": 96, "measured": {"compute": 0.8, ...}},
                                 "global": {"plan": null, "pairs": 96, "measured": null}}}}}

A class whose ``plan`` is null was calibrated and no candidate kept within the bound: its edits miss.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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
class ClassCalibration:
    """One edit class at one step count: the chosen plan (None: none kept within the bound, a miss), how
    many pairs it was measured on, and its measured figures (``chorus.calibrate.select.Figures``)."""

    plan: CalibratedPlan | None
    pairs: int
    measured: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ClassCalibration:
        plan = raw.get("plan")
        return cls(CalibratedPlan(**plan) if plan else None, int(raw["pairs"]), raw.get("measured"))


@dataclass(frozen=True)
class StepCalibration:
    """Every edit class calibrated at one step count, under one bound."""

    bound: dict[str, float]
    classes: dict[str, ClassCalibration]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepCalibration:
        classes = {name: ClassCalibration.from_dict(entry) for name, entry in raw["classes"].items()}
        return cls(dict(raw["bound"]), classes)


@dataclass(frozen=True)
class Calibration:
    """What ``calibration.json`` holds for one model revision; ``entry`` is what the policy reads."""

    model_id: str
    revision: str
    steps: dict[int, StepCalibration] = field(default_factory=dict)

    def entry(self, edit_class: str, num_steps: int) -> ClassCalibration | None:
        """The calibration of ``edit_class`` edits at ``num_steps`` steps; None where none was measured."""
        at = self.steps.get(num_steps)
        return at.classes.get(edit_class) if at is not None else None

    def end_steps(self, num_steps: int) -> int:
        """The last step any calibrated plan at ``num_steps`` reads a source latent of (0: none): what a
        miss of that step count must store."""
        at = self.steps.get(num_steps)
        plans = [c.plan for c in at.classes.values() if c.plan is not None] if at is not None else []
        return max((p.k1 + p.k2 for p in plans), default=0)

    def context_steps(self, num_steps: int) -> set[int]:
        """The 0-based steps a calibrated plan at ``num_steps`` runs Stage 2 with the source's context on."""
        at = self.steps.get(num_steps)
        plans = [c.plan for c in at.classes.values() if c.plan is not None] if at is not None else []
        return {step for p in plans if p.context for step in range(p.k1, p.k1 + p.k2)}

    def merged(self, other: Calibration) -> Calibration:
        """This calibration with ``other``'s step counts added (``other`` wins where both have one)."""
        return Calibration(self.model_id, self.revision, {**self.steps, **other.steps})

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "revision": self.revision,
            "steps": {str(n): asdict(at) for n, at in sorted(self.steps.items())},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibration:
        steps = {int(n): StepCalibration.from_dict(at) for n, at in raw.get("steps", {}).items()}
        return cls(raw["model_id"], raw["revision"], steps)


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
    """Write ``calibration`` into ``folder``, keeping the step counts an earlier calibration of the same
    revision measured and this one did not; returns the file's path."""
    earlier = read_calibration(folder, calibration.model_id, calibration.revision)
    if earlier is not None:
        calibration = earlier.merged(calibration)
    path = folder / CALIBRATION_FILE
    path.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")
    return path
