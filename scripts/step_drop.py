"""Does every sampling step matter? Drop one step at a time and measure how far the video moves.

    python scripts/step_drop.py --model chorus-shapes --steps 4 --prompts 48

For each step i, the model's velocity at that step is replaced by zero (the Euler update then leaves the
latent as it was: the previous latent is reused for that step) and the decoded clips are compared with the
full run's: mean PSNR (capped at 60 dB) and the share of clips the checker reads differently. A step whose
removal keeps PSNR at the cap changes nothing. Prints one line per dropped step.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from chorus.config import get_settings
from chorus.eval.checker import ATTRIBUTES, read_clips
from chorus.eval.fidelity import psnr
from chorus.eval.sample import draw_prompts, generate_clips, requests_for
from chorus.models.loader import load_adapter


class DropStep:
    """A forward hook that zeroes the transformer's output at one 0-based step (one call per step)."""

    def __init__(self, transformer: torch.nn.Module, step: int, steps: int) -> None:
        self.step, self.steps, self.calls = step, steps, 0
        self.handle = transformer.register_forward_hook(self._hook)

    def _hook(self, _module, _args, output):
        drop = self.calls % self.steps == self.step
        self.calls += 1
        return (torch.zeros_like(output[0]), *output[1:]) if drop else output

    def close(self) -> None:
        self.handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=48)
    args = parser.parse_args()
    settings = get_settings()
    adapter = load_adapter(args.model or settings.default_model, settings.models_dir, settings.device)
    requests = requests_for(adapter, draw_prompts(args.prompts), args.steps, guidance=None)
    full = generate_clips(adapter, requests, batch_size=16)  # one forward per step serves the whole batch
    full_readings = read_clips(full)
    print(f"{adapter.model_id}@{adapter.revision}, {args.steps} steps, {len(requests)} prompts")
    for step in range(args.steps):
        hook = DropStep(adapter.transformer, step, args.steps)
        try:
            dropped = generate_clips(adapter, requests, batch_size=16)
        finally:
            hook.close()
        fid = np.mean([min(psnr(d, f), 60.0) for d, f in zip(dropped, full)])
        pairs = zip(read_clips(dropped), full_readings)
        changed = np.mean([any(getattr(a, k) != getattr(b, k) for k in ATTRIBUTES) for a, b in pairs])
        print(f"drop step {step}: PSNR vs full run {fid:5.1f} dB, clips read differently {100 * changed:5.1f}%")


if __name__ == "__main__":
    main()
