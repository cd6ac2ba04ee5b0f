"""cache-dit's DBCache as an outside peer on this CPU: the shipped base model at 50 steps, plain generation
through Chorus' own loop (a transformer-only cache-dit context, refreshed per request; CFG rows are batched in
one forward, so ``enable_separate_cfg=False``). Needs ``pip install --no-deps cache-dit`` (not a project
dependency). Prints seconds per clip, block calls and PSNR against no cache (bench/results/compose_50.md).

    python scripts/dbcache_peer.py [THRESHOLD]
"""

import sys
import time

import cache_dit
import numpy as np
import torch
from cache_dit import DBCacheConfig

from chorus.config import get_settings
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate
from chorus.eval.fidelity import psnr
from chorus.models.loader import load_adapter

PROMPTS = [
    "a red square moving right on a gray background",
    "a blue circle moving up on a black background",
    "a green triangle moving left on a white background",
    "a yellow square moving down on a gray background",
]
STEPS = 50


def main(threshold: float) -> None:
    torch.set_num_threads(1)
    settings = get_settings()
    adapter = load_adapter("chorus-shapes-base", settings.models_dir, settings.device, settings.dtype)
    requests = [GenerationRequest.at_defaults(adapter.limits, p, 7 + i, STEPS) for i, p in enumerate(PROMPTS)]
    calls: list[int] = []
    adapter.transformer.blocks[1].register_forward_pre_hook(lambda *_: calls.append(1))

    def run(cached: bool) -> tuple[np.ndarray, float, int]:
        calls.clear()
        frames, start = [], time.perf_counter()
        for request in requests:
            if cached:
                cache_dit.refresh_context(adapter.transformer, num_inference_steps=STEPS)
            frames.append(generate(adapter, [request])[0].numpy())
        return np.stack(frames), (time.perf_counter() - start) / len(requests), len(calls)

    plain, plain_s, plain_calls = run(cached=False)
    config = DBCacheConfig(
        num_inference_steps=STEPS,
        residual_diff_threshold=threshold,
        max_warmup_steps=4,
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        enable_separate_cfg=False,
    )
    cache_dit.enable_cache(adapter.transformer, cache_config=config)
    cached, cached_s, cached_calls = run(cached=True)
    print(
        f"DBCache@{threshold:g}: {cached_s:.2f} vs {plain_s:.2f} s/clip (speedup {plain_s / cached_s:.2f}x), "
        f"block-1 calls {cached_calls} of {plain_calls} ({cached_calls / plain_calls:.2f})"
    )
    print("PSNR vs no cache, dB:", [round(psnr(a, b), 1) for a, b in zip(cached, plain)])


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.08)
