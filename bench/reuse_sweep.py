"""How much reuse an edit can take before the new prompt's attributes are lost: a sweep over reuse plans.

    python bench/reuse_sweep.py --pairs 48 --steps 4

Edit pairs come from the data's attribute space: a source prompt, and a target with exactly one
attribute changed (colour, shape, direction or background), sampled with another seed. Each source
runs once in full with capture; each target then runs with every plan (k1 steps skipped, k2 steps
on the edit's region, TGAA on or off) and without reuse. Printed per plan: the checker's accuracy
on the target (all four attributes, and the edited attribute alone), PSNR against the target's
no-reuse video, and the transformer tokens relative to no reuse (the compute proxy).
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
from chorus.engine.plan import ReusePlan
from chorus.engine.prepare import prepare_reuse
from chorus.engine.reuse import ReuseSource, generate_with_reuse
from chorus.engine.tgaa import TGAAConfig
from chorus.eval.checker import read_clips, score
from chorus.eval.fidelity import psnr
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


def request(adapter, prompt: str, seed: int, steps: int) -> GenerationRequest:
    limits = adapter.limits
    side = limits.default_side
    return GenerationRequest(
        prompt=prompt,
        num_frames=limits.default_frames,
        height=side,
        width=side,
        num_inference_steps=steps,
        guidance_scale=limits.default_guidance,
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="chorus-shapes")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    adapter = load_adapter(args.model, get_settings().models_dir)
    rng = np.random.default_rng(args.seed + 1)
    pairs = edit_pairs(args.pairs, args.seed)
    template = 0  # one phrasing for both prompts, so the diff is the edited word(s) only
    sources = [
        request(adapter, caption(s, template=template), int(rng.integers(2**31)), args.steps) for s, _, _ in pairs
    ]
    targets = [
        request(adapter, caption(t, template=template), int(rng.integers(2**31)), args.steps) for _, t, _ in pairs
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
    for k1, k2, tgaa in itertools.product(range(args.steps), range(args.steps), (True, False)):
        if k1 + k2 == 0 or k1 + k2 >= args.steps or (k2 == 0 and not tgaa):
            continue
        plans, reuse_sources = [], []
        for target, run in zip(targets, captured):
            plan, source = prepare_reuse(adapter, target, run, similarity=1.0)
            region = source.region if source is not None else None
            if k2 and (region is None or not region.mask.any()):
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
            f"k1={k1} k2={k2} tgaa={'on' if tgaa else 'off'}",
            out.frames.cpu().numpy(),
            stats.tokens / baseline_stats.tokens,
            time.perf_counter() - start,
        )


if __name__ == "__main__":
    main()
