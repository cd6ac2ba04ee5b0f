"""Render short clips of one moving shape, with the attributes that describe it.

The vocabulary is closed on purpose: every attribute can be read back from the
pixels by an analytic checker (``chorus.eval.checker``), so a model trained on
these clips can be judged without a learned judge.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (40, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "orange": (245, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (10, 10, 10),
    "gray": (128, 128, 128),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[int, int]] = {  # (dy, dx) per unit of speed
    "left": (0, -1),
    "right": (0, 1),
    "up": (-1, 0),
    "down": (1, 0),
}
SIZES: dict[str, float] = {"small": 0.17, "large": 0.26}  # half-extent / frame side
SPEEDS: dict[str, float] = {"slowly": 0.035, "quickly": 0.06}  # pixels per frame / frame side

# Colour x shape pairs never shown in training: the held-out set tests composition.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")}
)


@dataclass(frozen=True)
class ClipSpec:
    """The attributes of one clip; all a caption or a checker talks about."""

    color: str
    shape: str
    direction: str
    background: str
    size: str = "small"
    speed: str = "slowly"

    @property
    def held_out(self) -> bool:
        return (self.color, self.shape) in HELD_OUT_PAIRS

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def all_specs(held_out: bool | None = None) -> list[ClipSpec]:
    """Every attribute combination; ``held_out`` filters to one side of the split."""
    specs = [
        ClipSpec(c, s, d, b, z, v)
        for c, s, d, b, z, v in itertools.product(COLORS, SHAPES, DIRECTIONS, BACKGROUNDS, SIZES, SPEEDS)
    ]
    if held_out is None:
        return specs
    return [s for s in specs if s.held_out == held_out]


def shape_mask(shape: str, cy: float, cx: float, half: float, side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 <= half**2
    if shape == "square":
        return (np.abs(dy) <= half) & (np.abs(dx) <= half)
    if shape == "triangle":  # apex up, base at the bottom: fills half its box
        inside_rows = (dy >= -half) & (dy <= half)
        width_at_row = (dy + half) / 2.0
        return inside_rows & (np.abs(dx) <= width_at_row)
    raise ValueError(f"unknown shape {shape!r}")


def render(spec: ClipSpec, num_frames: int = 8, side: int = 32, rng: np.random.Generator | None = None) -> np.ndarray:
    """Return a clip as uint8 array (frames, side, side, 3).

    The start position is random (from ``rng``) but always keeps the whole path
    inside the frame, so direction and shape stay readable in every frame.
    """
    rng = rng or np.random.default_rng()
    half = SIZES[spec.size] * side
    step = SPEEDS[spec.speed] * side
    dy, dx = DIRECTIONS[spec.direction]
    travel = step * (num_frames - 1)
    lo, hi = half + 1, side - half - 1

    def start(axis_dir: int) -> float:
        if axis_dir > 0:
            return rng.uniform(lo, max(lo, hi - travel))
        if axis_dir < 0:
            return rng.uniform(min(hi, lo + travel), hi)
        return rng.uniform(lo, hi)

    y0, x0 = start(dy), start(dx)
    clip = np.empty((num_frames, side, side, 3), dtype=np.uint8)
    clip[:] = BACKGROUNDS[spec.background]
    for f in range(num_frames):
        mask = shape_mask(spec.shape, y0 + dy * step * f, x0 + dx * step * f, half, side)
        clip[f][mask] = COLORS[spec.color]
    return clip
