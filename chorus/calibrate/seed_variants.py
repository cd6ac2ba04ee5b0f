"""Seed variants (identical prompt, another seed): how new a variant is for each Stage-1 length.

A variant starts from its source's latent after k1 steps, the source's noise swapped for the new seed's
(chorus.engine.staged). The user asked for another sample: a variant near its source is a copy. Each row
gives the variant's mean absolute pixel distance to its source and its ratio to a fresh sample's
distance with the same new seed (1.0: as new as a fresh sample), and, where the checker judges the
model, the share of clips with every attribute right and, per attribute, the paired loss against the fresh
samples at its one-sided 95% upper limit (``loss_margin``). ``choose_variant`` picks the Stage 1 a seed
variant reuses at that step count: the longest that keeps the ratio >= ``MIN_NEWNESS``, saves
``MIN_SAVING`` and loses no attribute beyond the bound at its upper limit; none (0) where no length does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from chorus.calibrate.candidates import stage_lengths
from chorus.calibrate.measure import loss_margin
from chorus.calibrate.select import MIN_SAVING
from chorus.engine.capture import CaptureConfig
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.eval.checker import read_clips, right_per_clip, score
from chorus.eval.sample import draw_prompts, requests_for
from chorus.models.base import VideoModelAdapter
from chorus.reuse.plan import ReusePlan

MIN_NEWNESS = 0.8  # a variant at least this far from its source, relative to a fresh sample's distance


@dataclass(frozen=True)
class VariantRow:
    name: str
    distance: float  # mean |variant - source| in 0..255 pixel units
    ratio: float  # distance relative to a fresh sample with the variant's seed
    accuracy: float | None = None  # % of clips with every attribute right
    k1: int = 0  # the Stage 1 reused (0: the fresh samples)
    upper_losses: dict[str, float] | None = None  # per attribute and "all": paired loss's upper limit, points

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "k1": self.k1,
            "distance": self.distance,
            "ratio": self.ratio,
            "accuracy": self.accuracy,
            "upper_losses": self.upper_losses,
        }


def choose_variant(rows: Sequence[VariantRow], steps: int, max_loss: float | None) -> int:
    """The longest Stage 1 of ``rows`` that keeps a variant new (ratio >= ``MIN_NEWNESS``), saves
    ``MIN_SAVING`` of ``steps`` and, where ``max_loss`` is set, loses at most that many points on every
    attribute at its upper limit; 0 (seed variants miss) where none does."""
    kept = [
        r.k1
        for r in rows
        if r.k1 > 0
        and r.ratio >= MIN_NEWNESS
        and r.k1 / steps >= MIN_SAVING
        and (max_loss is None or (r.upper_losses is not None and max(r.upper_losses.values()) <= max_loss))
    ]
    return max(kept, default=0)


def seed_variant_sweep(
    adapter: VideoModelAdapter,
    count: int,
    steps: int,
    reusable: int,
    seed: int,
    judged: bool,
    lengths: Sequence[int] | None = None,
) -> list[VariantRow]:
    """``count`` prompts of the shapes vocabulary (eval's draw), each run once as a source and then as a
    variant with another seed: fresh (no reuse) and with each Stage-1 length of ``lengths`` (default:
    the calibration's, ``stage_lengths``) up to ``reusable``."""
    prompts = draw_prompts(count, seed=seed)
    sources = requests_for(adapter, prompts, steps, guidance=None)
    rng = np.random.default_rng(seed)
    variants = [replace(r, seed=int(rng.integers(2**31))) for r in sources]
    captured = generate_with_reuse(adapter, sources, capture=CaptureConfig().latents_only())
    source_frames = captured.frames.cpu().numpy().astype(np.float32)
    specs = [p.spec for p in prompts]

    def distance(frames: np.ndarray) -> float:
        return float(np.abs(frames.astype(np.float32) - source_frames).mean())

    fresh = generate_with_reuse(adapter, variants).frames.cpu().numpy()
    fresh_distance = distance(fresh)
    fresh_right = right_per_clip(read_clips(fresh), specs) if judged else None

    def row(k1: int, frames: np.ndarray) -> VariantRow:
        name, far = f"k1={k1}" if k1 else "no reuse", distance(frames)
        if fresh_right is None:
            return VariantRow(name, far, far / fresh_distance, k1=k1)
        readings = read_clips(frames)
        losses = {a: fresh_right[a] - ours for a, ours in right_per_clip(readings, specs).items()}
        upper = {a: float(d.mean() + loss_margin(d)) for a, d in losses.items()} if k1 else None
        return VariantRow(name, far, far / fresh_distance, 100 * score(readings, specs)["all"], k1, upper)

    rows = [row(0, fresh)]
    runs = [ReuseSource(run) for run in captured.captured]
    for k1 in (k for k in lengths or stage_lengths(steps) if 0 < k <= reusable):
        plans = [ReusePlan(steps, k1, 0, "calibration") for _ in variants]
        frames = generate_with_reuse(adapter, variants, plans, runs).frames.cpu().numpy()
        rows.append(row(k1, frames))
    return rows


def format_rows(rows: Sequence[VariantRow]) -> list[str]:
    return [
        f"{r.name:<10} |variant - source| {r.distance:5.1f}  ratio to a fresh sample {r.ratio:4.2f}"
        + (f"  all attributes {r.accuracy:5.1f}%" if r.accuracy is not None else "")
        + (f"  worst upper loss {max(r.upper_losses.values()):5.1f} pts" if r.upper_losses else "")
        for r in rows
    ]
