"""Lossless reuse, measured: the text-encoding LRU's saving per request and one request's frames alone vs
inside a batch of 4.

    nice -n 10 python -m bench.lossless   # from the repo root: the tiny Wan2.1 folder comes from tests.fixtures

- encode: a request's prompt and negative prompt through ``adapter.encode_prompts``, the median of
  ``--repeats`` calls with the LRU empty (both prompts encoded) and with both prompts in it, on the tiny
  Wan2.1 folder (UMT5) and the shipped model (MiniLM).
- batch: the largest pixel difference (of 255) between a request generated alone and the same request
  as the first row of a batch of 4 (three other prompts and seeds), on each model, on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from chorus.config import REPO_MODELS_DIR
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelCard, find_model
from chorus.models.encodings import EncodingCache
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from tests.fixtures.wan_folder import write_wan_folder

OTHERS = ("a blue circle moving left", "a green triangle moving up", "a yellow star moving down")


def encode_ms(adapter: VideoModelAdapter, request: GenerationRequest, repeats: int, cached: bool) -> float:
    prompts = [request.prompt, request.negative_prompt]
    times = []
    for _ in range(repeats):
        adapter.encodings = EncodingCache(2**30, adapter.revision, adapter.card.text_encoder)
        if cached:
            adapter.encode_prompts(prompts)
        tick = time.perf_counter()
        adapter.encode_prompts(prompts)
        times.append(time.perf_counter() - tick)
    return 1000 * statistics.median(times)


def batch_difference(adapter: VideoModelAdapter, request: GenerationRequest) -> int:
    alone = generate_with_reuse(adapter, [request]).frames[0]
    others = [replace(request, prompt=p, seed=request.seed + i + 1) for i, p in enumerate(OTHERS)]
    batched = generate_with_reuse(adapter, [request, *others]).frames[0]
    return int((alone.to(torch.int16) - batched.to(torch.int16)).abs().max())


def report(name: str, adapter: VideoModelAdapter, request: GenerationRequest, repeats: int) -> None:
    miss, hit = encode_ms(adapter, request, repeats, False), encode_ms(adapter, request, repeats, True)
    saved = miss - hit
    print(f"{name}: encode prompt + negative prompt {miss:.2f} ms, from the LRU {hit:.3f} ms: {saved:.2f} ms saved")
    print(f"{name}: largest pixel difference, batch 1 vs first row of batch 4: {batch_difference(adapter, request)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_wan_folder(Path(tmp) / "folder")
        card = ModelCard.load(add_model(folder, Path(tmp) / "models", Options(model_id="tiny-umt5")))
        request = GenerationRequest(
            "a red square moving right", negative_prompt="low quality, blurred details", num_frames=9,
            height=32, width=48, num_inference_steps=6, guidance_scale=4.0, seed=11,
        )  # fmt: skip
        report("tiny Wan2.1 folder (UMT5)", adapter_for(card), request, args.repeats)
    shapes = find_model("chorus-shapes", REPO_MODELS_DIR)
    limits = shapes.limits
    request = GenerationRequest.at_defaults(limits, "a red square moving right", seed=11, steps=limits.default_steps)
    report("chorus-shapes (MiniLM)", adapter_for(shapes), replace(request, negative_prompt="blurry"), args.repeats)


if __name__ == "__main__":
    main()
