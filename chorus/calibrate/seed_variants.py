"""Seed variants (identical prompt, another seed): how new a variant is for each Stage-1 length.

A variant starts from its source's latent after k1 steps, the source's noise swapped for the new seed's
(chorus.engine.staged). The user asked for another sample: a variant near its source is a copy. Each row
gives the variant's mean absolute pixel distance to its source and its ratio to a fresh sample's
distance with the same new seed (1.0: as new as a fresh sample), and, where the checker judges the
model, the share of clips with every attribute right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from chorus.calibrate.candidates import stage_lengths
from chorus.engine.capture import CaptureConfig
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.eval.checker import read_clips, score
from chorus.eval.sample import draw_prompts, requests_for
from chorus.models.base import VideoModelAdapter
from chorus.reuse.plan import ReusePlan


@dataclass(frozen=True)
class VariantRow:
    name: str
    distance: float  # mean |variant - source| in 0..255 pixel units
    ratio: float  # distance relative to a fresh sample with the variant's seed
    accuracy: float | None = None  # % of clips with every attribute right

    def to_dict(self) -> dict[str, float | str | None]:
        return {"name": self.name, "distance": self.distance, "ratio": self.ratio, "accuracy": self.accuracy}


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

    def row(name: str, frames: np.ndarray, fresh: float | None) -> VariantRow:
        distance = float(np.abs(frames.astype(np.float32) - source_frames).mean())
        accuracy = 100 * score(read_clips(frames), specs)["all"] if judged else None
        return VariantRow(name, distance, distance / (fresh or distance), accuracy)

    rows = [row("no reuse", generate_with_reuse(adapter, variants).frames.cpu().numpy(), None)]
    runs = [ReuseSource(run) for run in captured.captured]
    for k1 in (k for k in lengths or stage_lengths(steps) if 0 < k <= reusable):
        plans = [ReusePlan(steps, k1, 0, "calibration") for _ in variants]
        frames = generate_with_reuse(adapter, variants, plans, runs).frames.cpu().numpy()
        rows.append(row(f"k1={k1}", frames, rows[0].distance))
    return rows


def format_rows(rows: Sequence[VariantRow]) -> list[str]:
    return [
        f"{r.name:<10} |variant - source| {r.distance:5.1f}  ratio to a fresh sample {r.ratio:4.2f}"
        + (f"  all attributes {r.accuracy:5.1f}%" if r.accuracy is not None else "")
        for r in rows
    ]
