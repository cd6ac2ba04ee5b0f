"""Issue 14 part 2: can a latent grid of spatial factor 4 or 8 keep shapes at all? Average-pool each 9x64x64
ground-truth frame by the factor (RGB, no learning), upsample back, and read it with the checker (200 specs
held-in, 200 held-out).   nice -n 19 .venv/bin/python scripts/shape_capacity_pool.py
"""

import json

import numpy as np
import torch
import torch.nn.functional as F

from chorus.data.shapes import all_specs, render
from chorus.eval.checker import read_clips, score

torch.set_num_threads(1)
rng = np.random.default_rng(0)
for held_out in (False, True):
    pool = all_specs(held_out=held_out)
    specs = [pool[i] for i in rng.choice(len(pool), size=200, replace=len(pool) < 200)]
    clips = np.stack([render(s, 9, 64, rng) for s in specs])
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).reshape(-1, 3, 64, 64).float()
    for f in (4, 8):
        for mode in ("nearest", "bilinear"):
            y = F.interpolate(
                F.avg_pool2d(x, f), scale_factor=f, mode=mode, **({} if mode == "nearest" else {"align_corners": False})
            )
            y = y.round().clamp(0, 255).to(torch.uint8).reshape(200, 9, 3, 64, 64).permute(0, 1, 3, 4, 2).numpy()
            r = score(read_clips(y), specs)
            print(
                json.dumps({"held_out": held_out, "pool": f, "up": mode, **{k: round(v, 3) for k, v in r.items()}}),
                flush=True,
            )
