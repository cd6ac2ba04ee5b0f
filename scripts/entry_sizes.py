"""Print bytes per cache entry for Wan2.1 1.3B and 14B at 480p and 720p (81 frames), computed from the
capture configuration the configured reuse policy needs (chorus.cache.entries); no weights are loaded.

    python scripts/entry_sizes.py [--steps 50 4] [--text-tokens 128 512]
"""

from __future__ import annotations

import argparse

from chorus.cache.entries import WAN21, entry_size, fit_stage2
from chorus.config import get_settings
from chorus.engine.sampling import wan_sigmas
from chorus.reuse.session import ReuseConfig

SIZES = {"480p": (480, 832), "720p": (720, 1280)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 4])
    parser.add_argument("--text-tokens", type=int, nargs="+", default=[128, 512], help="prompt tokens kept in maps")
    args = parser.parse_args()
    reuse = ReuseConfig.from_settings(get_settings())
    budget = reuse.context_max_mb * 2**20
    print(
        "| model | size | steps | prompt tokens | latent steps | map steps | preview stride | context stride"
        " | latents MB | maps MB | Stage-2 MB | entry MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for steps in args.steps:
        config = reuse.policy.capture_for(reuse.capture, steps, wan_sigmas(steps))
        for model, space in WAN21.items():
            for name, (height, width) in SIZES.items():
                grid = space.token_grid(81, height, width)
                stored = fit_stage2(space.layers, space.width, grid, config, budget)
                for tokens in args.text_tokens:
                    size = entry_size(space, 81, height, width, stored, tokens)
                    print(
                        f"| {model} | {name} {height}x{width}x81 | {steps} | {tokens} | {list(config.latent_steps)}"
                        f" | {list(config.map_steps)} | {_stride(stored.preview_stride if stored.map_steps else ())}"
                        f" | {_stride(stored.context_stride if stored.context_steps else ())}"
                        f" | {size.latent_bytes / 1e6:.1f} | {size.map_bytes / 1e6:.1f}"
                        f" | {size.stage2_bytes / 1e6:.1f} | {size.total / 1e6:.1f} |"
                    )


def _stride(stride: tuple[int, ...] | None) -> str:
    return str(list(stride)) if stride else "none"


if __name__ == "__main__":
    main()
