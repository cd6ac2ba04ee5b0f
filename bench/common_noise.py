"""Which no-reuse run a calibration should pair a reused clip with: the target prompt at the target's seed
(what ``chorus calibrate`` does) or at the source's seed (common random numbers). Both give an unbiased paired
loss (each side's mean is the same expectation); the one whose readings disagree with the reused clip's less
often needs fewer pairs for the same confidence limit.

    nice -n 10 python -m bench.common_noise --model chorus-shapes --steps 16 --kind appearance --pairs 96 --k1 1 3 5

Prints, per Stage-1 length and attribute, the mean loss against each pairing, the share of pairs on which the
readings disagree, and the per-pair standard deviation of the loss against each and against their average.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from chorus.cache.embedder import MiniLMEmbedder
from chorus.calibrate.judge import CheckerJudge
from chorus.calibrate.measure import PreparedPair, prepare_pairs, run_group
from chorus.calibrate.pairs import KIND_ATTRIBUTES, one_kind_pairs
from chorus.config import get_settings
from chorus.engine.capture import CaptureConfig
from chorus.engine.tgaa import TGAAConfig
from chorus.eval.checker import ATTRIBUTES
from chorus.models.loader import load_adapter
from chorus.reuse.calibration import CalibratedPlan
from chorus.reuse.region import RegionConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="chorus-shapes")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--kind", choices=list(KIND_ATTRIBUTES), default="appearance")
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--k1", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--seed", type=int, default=77)
    args = parser.parse_args()

    settings = get_settings()
    adapter = load_adapter(args.model, settings.models_dir, "cpu")
    pairs = one_kind_pairs(args.kind, args.pairs, ATTRIBUTES, args.seed)
    no_context = CaptureConfig(context_steps=())  # Stage 1 only: no source keys and values
    prepared = prepare_pairs(adapter, pairs, args.steps, 5, RegionConfig(), no_context, 48, MiniLMEmbedder())
    judge, tgaa = CheckerJudge(), TGAAConfig()

    def readings(group: list[PreparedPair], candidate: CalibratedPlan | None = None) -> dict[str, np.ndarray]:
        frames = run_group(adapter, group, candidate, tgaa, 48).frames
        return judge.per_clip(frames, prepared, frames)

    at_target = readings(prepared)
    at_source = readings([replace(p, target=replace(p.target, seed=p.run.seed)) for p in prepared])
    print(f"{args.model}, {args.steps} steps, {args.kind}, {len(prepared)} pairs")
    print("k1  attribute  loss: target seed / source seed  disagree: target / source  sd: target / source / both")
    for k1 in args.k1:
        ours = readings(prepared, CalibratedPlan(k1, 0))
        for name in ("all", "size", "speed", "edited"):
            target, source = at_target[name] - ours[name], at_source[name] - ours[name]
            both = (at_target[name] + at_source[name]) / 2 - ours[name]
            print(
                f"{k1:2d}  {name:9s}  {target.mean():+6.1f} / {source.mean():+6.1f}"
                f"                 {np.mean(target != 0):.3f} / {np.mean(source != 0):.3f}"
                f"             {target.std():5.1f} / {source.std():5.1f} / {both.std():5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
