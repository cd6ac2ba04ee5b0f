"""What the staged loop reads of a request's plan: which stage each step is in, and Stage 2's region.

The plan is decided in ``chorus.reuse`` (``ReusePlan`` extends ``StagePlan`` with why and from what); the
engine only runs it. A ``StagePlan(num_steps)`` is a miss: every step computed in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from chorus.engine.capture import Grid
from chorus.vocab import Stage


@dataclass(frozen=True)
class StagePlan:
    num_steps: int
    stage1: int = 0  # k1: steps not run; the request starts from the source's latent after k1 steps
    stage2: int = 0  # k2: steps run on the region's tokens only, the rest taken from the source
    context: bool = field(default=True, kw_only=True)  # Stage 2's region attends to the source's keys/values
    halo: int = field(default=0, kw_only=True)  # tokens around the region recomputed as context, not written back

    @property
    def hit(self) -> bool:
        return self.stage1 + self.stage2 > 0

    @property
    def stage3(self) -> int:
        return self.num_steps - self.stage1 - self.stage2

    @property
    def amplified_tokens(self) -> tuple[int, ...]:
        """The target's text tokens TGAA amplifies in Stage 2 (none for a plan that names no diff)."""
        return ()

    def stage_of(self, step: int) -> Stage:
        """The stage of a 0-based step: Stage.full for every step of a miss."""
        if not self.hit:
            return Stage.full
        if step < self.stage1:
            return Stage.stage1
        return Stage.stage2 if step < self.stage1 + self.stage2 else Stage.stage3


@dataclass(frozen=True)
class RegionMask:
    mask: torch.Tensor  # bool (t, h, w) over the video token grid

    @property
    def fraction(self) -> float:
        return float(self.mask.float().mean())

    @property
    def index(self) -> torch.Tensor:
        """Flat token indices inside the region, in the transformer's (t, h, w) order."""
        return self.mask.flatten().nonzero().squeeze(1)


def dilate(mask: torch.Tensor, radius: Grid) -> torch.Tensor:
    """``mask`` (t, h, w) grown by ``radius`` tokens along each axis."""
    if not any(radius):
        return mask
    grown = F.max_pool3d(mask.float()[None, None], [2 * r + 1 for r in radius], stride=1, padding=list(radius))
    return grown[0, 0] > 0
