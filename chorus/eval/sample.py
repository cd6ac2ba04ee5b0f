"""Sample prompts from the shapes vocabulary, generate them, and judge the results."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chorus.data.captions import caption, named_attributes
from chorus.data.shapes import ClipSpec, all_specs
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate
from chorus.eval.checker import ATTRIBUTES, confusions, read_clips, score
from chorus.eval.fidelity import temporal_consistency
from chorus.models.base import VideoModelAdapter

_TIMING_PROMPTS = 3  # batch-1 clips timed, after one warm-up


@dataclass(frozen=True)
class EvalPrompt:
    spec: ClipSpec
    prompt: str
    seed: int

    @property
    def named(self) -> frozenset[str]:
        """The attributes the prompt names: the ones it is judged on."""
        return named_attributes(self.prompt)


def draw_prompts(num_prompts: int, held_out: bool = False, seed: int = 0) -> list[EvalPrompt]:
    """``num_prompts`` specs from one side of the held-out split, each with a random
    phrasing and noise seed; without repeats unless more are asked than exist."""
    rng = np.random.default_rng(seed)
    pool = all_specs(held_out=held_out)
    picks = rng.choice(len(pool), size=num_prompts, replace=num_prompts > len(pool))
    return [EvalPrompt(pool[i], caption(pool[i], rng), int(rng.integers(2**31))) for i in picks]


def requests_for(
    adapter: VideoModelAdapter, prompts: list[EvalPrompt], steps: int, guidance: float | None
) -> list[GenerationRequest]:
    return [GenerationRequest.at_defaults(adapter.limits, p.prompt, p.seed, steps, guidance) for p in prompts]


def generate_clips(adapter: VideoModelAdapter, requests: list[GenerationRequest], batch_size: int) -> np.ndarray:
    """uint8 clips (N, F, H, W, 3), generated ``batch_size`` at a time."""
    chunks = [generate(adapter, requests[i : i + batch_size]) for i in range(0, len(requests), batch_size)]
    return np.concatenate([c.cpu().numpy() for c in chunks])


def seconds_per_clip(adapter: VideoModelAdapter, requests: list[GenerationRequest]) -> float:
    """Wall time of one clip at batch 1 (prompt encoding included), after a warm-up: the best
    of a few, as that is the one least disturbed by whatever else runs on the machine."""
    generate(adapter, requests[:1])
    times = []
    for request in requests[:_TIMING_PROMPTS]:
        start = time.perf_counter()
        generate(adapter, [request])
        times.append(time.perf_counter() - start)
    return min(times)


def evaluate(
    adapter: VideoModelAdapter,
    steps: int = 4,
    num_prompts: int = 200,
    held_out: bool = False,
    seed: int = 0,
    guidance: float | None = None,
    batch_size: int = 16,
    grid: Path | None = None,
) -> dict[str, Any]:
    """Attribute accuracies (keys color, shape, direction, background, size, speed, and all over the first
    four; each attribute judged on the prompts that name it, ``judged`` says how many) of ``num_prompts``
    generated clips, plus timing, temporal consistency and the most common confusions.
    ``grid`` saves a PNG of the first clips with their prompt and reading, to look at."""
    prompts = draw_prompts(num_prompts, held_out, seed)
    requests = requests_for(adapter, prompts, steps, guidance)
    start = time.perf_counter()
    clips = generate_clips(adapter, requests, batch_size)
    batched = (time.perf_counter() - start) / len(clips)
    specs, named = [p.spec for p in prompts], [p.named for p in prompts]
    readings = read_clips(clips)
    if grid is not None:
        from chorus.eval.grid import save_grid

        save_grid(grid, clips, [p.prompt for p in prompts], readings)
    return {
        **score(readings, specs, named),
        "n": len(clips),
        "judged": {a: sum(a in n for n in named) for a in ATTRIBUTES},
        "held_out": held_out,
        "steps": steps,
        "guidance": requests[0].guidance_scale,
        "seconds_per_clip": seconds_per_clip(adapter, requests),
        "batched_seconds_per_clip": batched,
        "temporal_consistency": temporal_consistency(clips, specs),
        "errors": confusions(readings, specs, named),
    }


FIXED_SET = {"held_out": False, "seed": 0}


def fixed_set_quality(adapter: VideoModelAdapter, num_prompts: int = 48) -> tuple[dict[str, float], dict]:
    """Accuracy on a fixed draw of ``num_prompts`` held-in prompts (seed 0), sampled as the model is served (its
    card's default steps and guidance): the figures a card records as ``quality_<num_prompts>`` and the
    tests re-check (a many-step model records fewer prompts to keep the suite short); returns
    (scores, confusions)."""
    prompts = draw_prompts(num_prompts, held_out=FIXED_SET["held_out"], seed=FIXED_SET["seed"])
    requests = requests_for(adapter, prompts, steps=adapter.limits.default_steps, guidance=None)
    clips = generate_clips(adapter, requests, batch_size=len(prompts))
    specs, named = [p.spec for p in prompts], [p.named for p in prompts]
    readings = read_clips(clips)
    return score(readings, specs, named), confusions(readings, specs, named)
