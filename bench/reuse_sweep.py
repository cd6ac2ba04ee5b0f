"""How much reuse an edit can take before the new prompt's attributes are lost: a sweep over reuse plans.

    python bench/reuse_sweep.py --pairs 48 --steps 4
    python bench/reuse_sweep.py --pairs 48 --steps 20   # k1, k2 over shares of the steps

Edit pairs come from the data's attribute space: a source prompt, and a target with exactly one
attribute changed (colour, shape, direction or background), sampled with another seed. Each source
runs once in full with capture; each target then runs with every plan (k1 steps skipped, k2 steps
on the edit's region, TGAA on or off) and without reuse. Printed per plan: the checker's accuracy
on the target (all four attributes, and the edited attribute alone), PSNR against the target's
no-reuse video, and the transformer tokens relative to no reuse (the compute proxy).

    python bench/reuse_sweep.py --seed-variants --pairs 96 --steps 4
    python bench/reuse_sweep.py --seed-variants --pairs 48 --steps 50 --k1 2 4 8

Seed variants (identical prompt, another seed): Stage 1 from the source's run for k1 steps, the
source's noise swapped for the new seed's. Printed: accuracy, and how far the variant lies from its
source (mean absolute pixel difference) against a fresh sample with the new seed: a variant near 0 is
a copy, not the other sample the user asked for; the ratio to a fresh sample's distance says how new it is.
Measured figures: ``bench/results/reuse_sweep.md``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace

import numpy as np
import torch

from chorus.config import get_settings
from chorus.data.captions import caption
from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, ClipSpec, all_specs
from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import DenoiseStats, GenerationRequest
from chorus.engine.plan import ReusePlan, ReusePolicy
from chorus.engine.prepare import prepare_reuse
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.tgaa import TGAAConfig
from chorus.eval.checker import read_clips, score
from chorus.eval.fidelity import psnr
from chorus.eval.sample import draw_prompts, requests_for
from chorus.models.loader import load_adapter

ALTERNATIVES = {
    "color": list(COLORS),
    "shape": list(SHAPES),
    "direction": list(DIRECTIONS),
    "background": list(BACKGROUNDS),
}


def edit_pairs(count: int, seed: int) -> list[tuple[ClipSpec, ClipSpec, str]]:
    """(source, target, edited attribute), edits spread evenly over the four attributes."""
    rng = np.random.default_rng(seed)
    pool = all_specs(held_out=False)
    pairs = []
    for i in range(count):
        attribute = list(ALTERNATIVES)[i % 4]
        source = pool[rng.integers(len(pool))]
        others = [v for v in ALTERNATIVES[attribute] if v != getattr(source, attribute)]
        target = replace(source, **{attribute: others[rng.integers(len(others))]})
        pairs.append((source, target, attribute))
    return pairs


# What prepare_reuse needs to find every edit's diff and region: no step floor, no region size limit.
UNGATED = ReusePolicy(min_edit_steps=1, max_region_fraction=1.0, stage2_sigma=0.0)
PLAN_SHARES = (0.0, 0.1, 0.25, 0.5, 0.75)  # k1 and k2 tried, as shares of the steps


def plan_grid(steps: int) -> list[tuple[int, int, bool]]:
    """(k1, k2, TGAA) to try: every pair of step counts from ``PLAN_SHARES`` that leaves a repair
    step, Stage 2 with TGAA on and off, Stage 1 alone once."""
    counts = sorted({round(share * steps) for share in PLAN_SHARES})
    return [
        (k1, k2, tgaa)
        for k1, k2, tgaa in itertools.product(counts, counts, (True, False))
        if 0 < k1 + k2 < steps and (k2 or tgaa)
    ]


def sweep_seed_variants(adapter, count: int, steps: int, seed: int, stage1: list[int] | None = None) -> None:
    prompts = draw_prompts(count, seed=seed)  # eval's draw: held-in specs, varied phrasings, seeds
    specs = [p.spec for p in prompts]
    sources = requests_for(adapter, prompts, steps, guidance=None)
    rng = np.random.default_rng(seed)
    targets = [replace(r, seed=int(rng.integers(2**31))) for r in sources]
    captured = generate_with_reuse(adapter, sources, capture=CaptureConfig().latents_only())
    source_frames = captured.frames.cpu().numpy().astype(np.float32)

    fresh_distance: list[float] = []

    def report(name: str, frames: torch.Tensor) -> None:
        pixels = frames.cpu().numpy()
        distance = float(np.abs(pixels.astype(np.float32) - source_frames).mean())
        if not fresh_distance:
            fresh_distance.append(distance)
        print(
            f"{name:<12} all {100 * score(read_clips(pixels), specs)['all']:5.1f}%  |variant - source| {distance:5.1f}"
            f"  ratio to a fresh sample {distance / fresh_distance[0]:4.2f}"
        )

    fresh = generate_with_reuse(adapter, targets).frames
    report("no reuse", fresh)
    for k1 in stage1 or range(1, steps):
        plans = [ReusePlan(steps, k1, 0, "sweep") for _ in targets]
        reused = [ReuseSource(run) for run in captured.captured]
        report(f"k1={k1}", generate_with_reuse(adapter, targets, plans, reused).frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="chorus-shapes")
    parser.add_argument("--seed-variants", action="store_true", help="sweep Stage 1 for identical prompts")
    parser.add_argument("--k1", type=int, nargs="*", help="seed variants: the Stage-1 lengths to try (default: all)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    adapter = load_adapter(args.model, get_settings().models_dir)
    if args.seed_variants:
        sweep_seed_variants(adapter, args.pairs, args.steps, args.seed + 1, args.k1)
        return
    rng = np.random.default_rng(args.seed + 1)
    pairs = edit_pairs(args.pairs, args.seed)
    template = 0  # one phrasing for both prompts, so the diff is the edited word(s) only
    limits = adapter.limits
    sources = [
        GenerationRequest.at_defaults(limits, caption(s, template=template), int(rng.integers(2**31)), args.steps)
        for s, _, _ in pairs
    ]
    targets = [
        GenerationRequest.at_defaults(limits, caption(t, template=template), int(rng.integers(2**31)), args.steps)
        for _, t, _ in pairs
    ]
    captured = generate_with_reuse(adapter, sources, capture=CaptureConfig()).captured
    baseline_stats = DenoiseStats()
    baseline = generate_with_reuse(adapter, targets, stats=baseline_stats).frames.cpu().numpy()
    target_specs = [t for _, t, _ in pairs]
    edited = [a for _, _, a in pairs]

    def report(name: str, frames: np.ndarray, tokens: float, seconds: float) -> None:
        readings = read_clips(frames)
        acc = score(readings, target_specs)
        on_edit = np.mean([getattr(r, a) == getattr(t, a) for r, t, a in zip(readings, target_specs, edited)])
        fid = np.mean([min(psnr(f, b), 60.0) for f, b in zip(frames, baseline)])
        print(
            f"{name:<26} all {100 * acc['all']:5.1f}%  edited attr {100 * on_edit:5.1f}%  "
            f"color {100 * acc['color']:5.1f} shape {100 * acc['shape']:5.1f} dir {100 * acc['direction']:5.1f} "
            f"bg {100 * acc['background']:5.1f}  PSNR {fid:5.1f}  compute {tokens:4.2f}  {seconds:6.1f} s"
        )

    report("no reuse", baseline, 1.0, 0.0)
    for k1, k2, tgaa in plan_grid(args.steps):
        plans, reuse_sources, no_region = [], [], 0
        for target, run in zip(targets, captured):
            # Candidates are built here, not through the service policy's gate: only the diff and region
            # come from prepare_reuse, with a policy that never turns an edit away.
            plan, source = prepare_reuse(adapter, target, run, similarity=1.0, policy=UNGATED)
            region = source.region if source is not None else None
            if k2 and (region is None or not region.mask.any()):
                no_region += 1
                plans.append(ReusePlan(args.steps, k1, 0, "sweep", diff=plan.diff))
            else:
                plans.append(
                    ReusePlan(args.steps, k1, k2, "sweep", diff=plan.diff, region_fraction=region and region.fraction)
                )
            reuse_sources.append(ReuseSource(run, region))
        stats = DenoiseStats()
        start = time.perf_counter()
        out = generate_with_reuse(
            adapter, targets, plans, reuse_sources, tgaa=TGAAConfig() if tgaa else TGAAConfig(alpha=1.0), stats=stats
        )
        report(
            f"k1={k1} k2={k2} tgaa={'on' if tgaa else 'off'}" + (f" ({no_region} without region)" if no_region else ""),
            out.frames.cpu().numpy(),
            stats.tokens / baseline_stats.tokens,
            time.perf_counter() - start,
        )


if __name__ == "__main__":
    main()
