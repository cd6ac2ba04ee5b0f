"""Time a random-weight Wan2.1 transformer through Chorus' engine: a miss (capturing the entry the default
policy stores), then hits from it (a seed variant, a replay), at each step count asked. Prints per-step
time, video tokens per second, peak GPU memory and the entry's bytes, as JSON lines.

Text states are random (UMT5-XXL's 4096-d, 512 tokens) and frames are not decoded: what is timed is the
denoise loop the cache changes. ``--config 1.3b`` is Wan2.1-T2V-1.3B's transformer config.

    python scripts/gpu_bench.py --config 1.3b --steps 4 50 --frames 81 --height 480 --width 832 --dtype bf16
    python scripts/gpu_bench.py --config tiny --device cpu   # the same code path, in seconds, on a CPU
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import DenoiseStats, GenerationRequest
from chorus.engine.sampling import wan_sigmas
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.models.base import PromptEncoding
from chorus.models.catalog import ModelCard, ModelLimits
from chorus.models.loader import DTYPES
from chorus.models.wan import WanBase
from chorus.reuse.plan import ReusePlan, ReusePolicy

CONFIGS = {
    "1.3b": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, text_dim=4096),
    "tiny": dict(num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=2, text_dim=32),
}
RENOISE = {"shift": 5.0, "stochastic_sampling": True}
UNIPC = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0, "solver_order": 2}


class RandomWan(WanBase):
    """The Wan adapter base over a random transformer: random text states, latents returned undecoded (a
    bench fake); its forward is the served adapters' own (``WanBase.predict_velocity``)."""

    def __init__(self, config: str, device: str, dtype: str, steps: int) -> None:
        sigmas = (1.0, 0.75, 0.5, 0.25) if steps == 4 else None  # LightX2V's 4-step card
        scheduler = {"class": "UniPCMultistepScheduler", "config": UNIPC}
        if sigmas:
            scheduler = {"class": "FlowMatchEulerDiscreteScheduler", "config": RENOISE}
        card = ModelCard(
            model_id=f"random-wan-{config}",
            path=Path("."),
            revision="random",
            limits=ModelLimits(frames=(81,), min_side=16, max_side=1280, side_multiple=16),
            latent_space="wan_vae",
            text_encoder="random",
            flow_shift=3.0,
            scheduler=scheduler,
            sigmas=sigmas,
        )
        super().__init__(card, device, DTYPES[dtype])
        with torch.device(device):
            self.transformer = WanTransformer3DModel(
                patch_size=(1, 2, 2), in_channels=16, out_channels=16, freq_dim=256, **CONFIGS[config]
            )
        keep = set(self.transformer._keep_in_fp32_modules)  # as from_pretrained(dtype=...) leaves them
        for name, param in self.transformer.named_parameters():
            if not keep & set(name.split(".")):
                param.data = param.data.to(self.dtype)
        self.transformer.eval().requires_grad_(False)
        self.vae, self.text_dim = None, CONFIGS[config]["text_dim"]

    def encode_prompts(self, prompts: list[str]) -> PromptEncoding:
        gen = torch.Generator().manual_seed(len(prompts))
        states = torch.randn(len(prompts), 512, self.text_dim, generator=gen).to(self.device, self.dtype)
        return PromptEncoding(states=states, token_ids=[list(range(120)) for _ in prompts])

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return 16, (frames - 1) // 4 + 1, height // 8, width // 8  # Wan2.1's VAE compression, without a VAE

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


def timed(adapter, requests, plans=None, sources=None, capture=None) -> tuple[dict, object]:
    if adapter.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stats, start = DenoiseStats(), time.perf_counter()
    out = generate_with_reuse(adapter, requests, plans, sources, capture=capture, stats=stats)
    if adapter.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    computed = [s for s, t in zip(stats.step_seconds, stats.tokens_per_step) if t]
    row = {
        "seconds": round(seconds, 3),
        "steps_run": len(computed),
        "step_seconds": round(sum(computed) / max(len(computed), 1), 4),
        "tokens_per_s": round(stats.tokens / seconds),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if adapter.device.startswith("cuda") else None,
    }
    return row, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="1.3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 50])
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    args = parser.parse_args()
    for steps in args.steps:
        adapter = RandomWan(args.config, args.device, args.dtype, steps)
        guidance = 1.0 if steps == 4 else 5.0  # the 4-step card is CFG-distilled: one forward a step
        request = GenerationRequest("a cat", "", args.frames, args.height, args.width, steps, guidance, seed=1)
        capture = ReusePolicy().capture_for(CaptureConfig(), steps, wan_sigmas(steps))
        base = {
            "config": args.config,
            "dtype": args.dtype,
            "steps": steps,
            "size": [args.frames, args.height, args.width],
        }
        row, miss = timed(adapter, [request], capture=capture)
        run = miss.captured[0]
        print(json.dumps({**base, "run": "miss (captures)", **row, "entry_bytes": run.nbytes}))
        variant = max((k for k in run.latents if k < steps), default=0)  # 0: the policy makes variants misses
        if variant:
            row, _ = timed(adapter, [replace(request, seed=2)], [ReusePlan(steps, variant)], [ReuseSource(run)])
            print(json.dumps({**base, "run": f"seed variant (Stage 1: {variant} steps)", **row}))
        row, _ = timed(adapter, [request], [ReusePlan(steps, steps)], [ReuseSource(run)])
        print(json.dumps({**base, "run": "replay", **row}))
        del adapter, miss, run
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
