"""Per-step transformer time: a full forward vs Stage-2 region-restricted (token-subset) forwards.

    nice -n 10 python -m bench.engine_micro   # from the repo root
    python -m bench.engine_micro --device cuda --repeats 20

One CFG step = one transformer call on 2B rows (conditional + unconditional). For each model, batch
size and region fraction, the median over ``--repeats`` timed calls (after a warm-up) is reported
with its ratio to the full forward of the same batch. Regions are random token subsets of the given
size (the cost depends on the count, not the shape). Models: the shipped ``chorus-shapes``
(9x64x64 clips as 8 x 3x16x16 Wan-VAE latents, patch 1x2x2: 192 tokens, 4 layers, width 128) and a
larger random pixel-space Wan on 8x32x32 clips (patch 2x2x2: 1024 tokens, 6 layers, width 256).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
from diffusers import WanTransformer3DModel

from chorus.config import get_settings
from chorus.engine.subset_forward import subset_forward
from chorus.models.loader import load_adapter

# A random pixel-space Wan on 8x32x32 clips and the shipped model's text: 1024 tokens, 6 layers, width 256.
LARGER_WAN = {
    "patch_size": (2, 2, 2),
    "num_attention_heads": 4,
    "attention_head_dim": 64,
    "in_channels": 3,
    "out_channels": 3,
    "text_dim": 384,
    "freq_dim": 256,
    "ffn_dim": 1024,
    "num_layers": 6,
    "rope_max_seq_len": 64,
}


def timed(fn: Callable[[], object], sync: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


@torch.inference_mode()
def bench_model(name, transformer, video, batches, fractions, repeats, device) -> None:
    """Full and subset forwards are timed in interleaved rounds, so load from other processes on a
    shared machine hits every variant alike; the median per variant is reported. On a CPU shared with
    other work, the process's CPU time (with ``--threads 1``) is the steadier measure of compute."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    transformer = transformer.to(device).eval()
    channels = transformer.config.in_channels
    pt, ph, pw = transformer.config.patch_size
    frames, height, width = video
    tokens = (frames // pt) * (height // ph) * (width // pw)
    generator = torch.Generator().manual_seed(0)
    print(f"\n{name}: {tokens} video tokens, {sum(p.numel() for p in transformer.parameters()) / 1e6:.1f}M params")
    print(f"{'batch':>5} {'fraction':>8} {'tokens':>6} {'wall ms':>9} {'ratio':>6} {'cpu ms':>9} {'ratio':>6}")
    for batch in batches:
        rows = 2 * batch  # CFG: conditional and unconditional in one call
        latents = torch.randn(rows, channels, *video, generator=generator).to(device)
        text = torch.randn(rows, 32, transformer.config.text_dim, generator=generator).to(device)
        t = torch.full((rows,), 500.0, device=device)
        variants = {
            "full": (
                tokens,
                partial(transformer, hidden_states=latents, timestep=t, encoder_hidden_states=text, return_dict=False),
            )
        }
        for fraction in fractions:
            count = max(1, round(fraction * tokens))
            index = torch.randperm(tokens, generator=generator)[:count].sort().values.to(device)
            variants[f"{fraction:.0%}"] = (count, partial(subset_forward, transformer, latents, t, text, index))
        for _, fn in variants.values():
            timed(fn, sync)  # warm-up
        times = {key: [] for key in variants}
        for _ in range(repeats):
            for key, (_, fn) in variants.items():
                times[key].append(timed(fn, sync))
        medians = {key: [statistics.median(column) for column in zip(*runs)] for key, runs in times.items()}
        full_wall, full_cpu = medians["full"]
        for key, (count, _) in variants.items():
            wall, cpu = medians[key]
            print(
                f"{batch:>5} {key:>8} {count:>6} {wall * 1e3:>9.2f} {wall / full_wall:>6.2f}"
                f" {cpu * 1e3:>9.2f} {cpu / full_cpu:>6.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25, 0.1])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    shapes = load_adapter("chorus-shapes", get_settings().models_dir)
    limits = shapes.limits
    _, *latent_grid = shapes.latent_shape(limits.default_frames, limits.default_height, limits.default_width)
    bench_model(
        "chorus-shapes", shapes.transformer, tuple(latent_grid), args.batches, args.fractions, args.repeats, args.device
    )
    torch.manual_seed(0)
    larger = WanTransformer3DModel(**LARGER_WAN)
    bench_model("larger random Wan", larger, (8, 32, 32), args.batches, args.fractions, args.repeats, args.device)


if __name__ == "__main__":
    main()
