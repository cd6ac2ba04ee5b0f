"""Stage 2's region: the video tokens a prompt edit must recompute, from cross-attention maps.

The source run's captured maps say where the video attended to each prompt token. The attention to
the differing tokens is summed, min-max normalised, thresholded, unioned over frames (an object that
moves, or whose motion the edit changes, must be recomputed wherever it is or will be, not only where
it was in each frame), brought to the transformer's token grid and dilated by a margin in (t, h, w)
token space, so seams fall a few tokens away from the edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chorus.engine.capture import Grid
from chorus.engine.stages import RegionMask, dilate


@dataclass(frozen=True)
class RegionConfig:
    threshold: float = 0.5  # keep tokens at or above this share of the way from the map's min to its max
    margin: Grid = (0, 1, 1)  # dilation radius in (t, h, w) tokens
    flat_contrast: float = 0.05  # a map whose (max - min) / max is below this is not localised: whole frame
    union_frames: bool = True  # a token kept in one frame is kept in every frame (the whole trajectory)


def region_mask(
    maps: torch.Tensor, tokens: Sequence[int], map_grid: Grid, token_grid: Grid, config: RegionConfig
) -> RegionMask:
    """Mask over ``token_grid`` from ``maps`` (map tokens, text tokens) on ``map_grid``, for text ``tokens``."""
    if not tokens:
        return RegionMask(torch.zeros(token_grid, dtype=torch.bool))
    heat = maps[:, list(tokens)].float().sum(-1).reshape(map_grid)
    low, high = heat.min(), heat.max()
    if high <= 0 or (high - low) / high < config.flat_contrast:
        return RegionMask(torch.ones(token_grid, dtype=torch.bool))
    keep = (heat - low) / (high - low) >= config.threshold
    if config.union_frames:
        keep = keep.any(0, keepdim=True).expand_as(keep)
    keep = keep.float()[None, None]
    keep = F.interpolate(keep, size=token_grid, mode="nearest")
    return RegionMask(dilate(keep[0, 0] > 0, config.margin))
