"""How much of a Stage-1 plan's measured loss is the plan, and how much is another sample.
Figures: bench/results/calibration_kinds.md.

    python scripts/stage1_seed_pairing.py appearance 48 4 chorus-shapes 1,2
    python scripts/stage1_seed_pairing.py appearance 24 50 chorus-shapes-base 5,10,20

Vocabulary edit pairs of one kind run as the calibration runs them (``chorus.calibrate.measure``). Printed per
row: every attribute's accuracy, its paired loss against a no-reuse baseline and the number of discordant pairs:
no reuse at the sources' seeds against no reuse at the targets' (the noise floor of a paired comparison), then
per Stage-1 length the plan as served (the target's noise swapped in) against the targets' baseline, and the plan
with the target at the source's seed (common random numbers) against the sources'-seed baseline.
"""

import sys
from dataclasses import replace

import numpy as np
import torch

from chorus.cache.embedder import MiniLMEmbedder
from chorus.calibrate.judge import CheckerJudge
from chorus.calibrate.measure import candidate_plan, chunks, prepare_pairs
from chorus.calibrate.pairs import kind_pairs
from chorus.config import get_settings
from chorus.engine.denoise import DenoiseStats
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.eval.checker import ATTRIBUTES
from chorus.models.loader import load_adapter
from chorus.reuse.calibration import CalibratedPlan
from chorus.reuse.session import ReuseConfig


def main(kind: str, pairs: int, steps: int, model: str, k1s: list[int]) -> None:
    torch.set_num_threads(1)
    settings = get_settings()
    config = ReuseConfig.from_settings(settings)
    adapter = load_adapter(model, settings.models_dir, settings.device, settings.dtype)
    embedder = MiniLMEmbedder(device=settings.device)
    edit_pairs = kind_pairs(pairs, [kind], ATTRIBUTES, 1)
    prepared = prepare_pairs(adapter, edit_pairs, steps, 2, config.region, config.capture, 48, embedder)
    judge = CheckerJudge()

    def run(plan: CalibratedPlan | None = None, same_seed: bool = False) -> tuple[dict[str, np.ndarray], int]:
        stats, frames = DenoiseStats(), []
        for chunk in chunks(prepared, 48):
            requests = [replace(p.target, seed=p.run.seed) if same_seed else p.target for p in chunk]
            plans = [candidate_plan(plan, p) for p in chunk] if plan else None
            sources = [ReuseSource(p.run, p.region) for p in chunk] if plan else None
            frames.append(generate_with_reuse(adapter, requests, plans, sources, stats=stats).frames.numpy())
        clips = np.concatenate(frames)
        return judge.per_clip(clips, prepared, clips), stats.tokens

    def report(name: str, ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
        accuracy = {k: round(float(v.mean()), 1) for k, v in ours.items()}
        loss = {k: round(float(theirs[k].mean() - ours[k].mean()), 1) for k in ours}
        discordant = {k: int(((ours[k] > 50) != (theirs[k] > 50)).sum()) for k in ours}
        print(f"{name}\n  accuracy   {accuracy}\n  loss       {loss}\n  discordant {discordant}", flush=True)

    targets, full_tokens = run()
    at_sources, _ = run(same_seed=True)
    print(f"{kind}: {len(prepared)} pairs, {steps} steps, {model}")
    report("no reuse, sources' seeds vs targets' seeds", at_sources, targets)
    for k1 in k1s:
        plan = CalibratedPlan(k1, 0)
        served, tokens = run(plan)
        same_seed, _ = run(plan, same_seed=True)
        report(f"k1={k1} (compute {tokens / full_tokens:.3f}) as served vs targets' seeds", served, targets)
        report(f"k1={k1} target at the source's seed vs sources' seeds", same_seed, at_sources)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], [int(k) for k in sys.argv[5].split(",")])
