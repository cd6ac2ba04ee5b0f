"""Captions for procedural clips: several phrasings, and a parser back to attributes."""

from __future__ import annotations

import re

import numpy as np

from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, ClipSpec

_DIRECTION_PHRASES = {
    "left": ("moving left", "going to the left", "heading left", "sliding left"),
    "right": ("moving right", "going to the right", "heading right", "sliding right"),
    "up": ("moving up", "going upward", "heading up", "rising up"),
    "down": ("moving down", "going downward", "heading down", "falling down"),
}
_TEMPLATES = (
    "a {color} {shape} {motion} on a {background} background",
    "a {size} {color} {shape} {motion} on a {background} background",
    "a {size} {color} {shape} {speed} {motion} across a {background} background",
    "{background} background, a {color} {shape} {motion}",
    "on a {background} backdrop, a {size} {color} {shape} is {motion} {speed}",
    "a {color} {shape}, {size}, {motion} over a plain {background} background",
)


# The phrasings that name every attribute, size and speed included.
COMPLETE_TEMPLATES = tuple(i for i, t in enumerate(_TEMPLATES) if "{size}" in t and "{speed}" in t)


def caption(
    spec: ClipSpec, rng: np.random.Generator | None = None, template: int | None = None, complete: bool = False
) -> str:
    """A caption naming the clip's colour, shape, direction and background (and
    sometimes size and speed). ``template`` pins the phrasing (and its motion words); otherwise it is
    random, among ``COMPLETE_TEMPLATES`` if ``complete`` (a caption that names size and speed too)."""
    rng = rng or np.random.default_rng()
    if template is None:
        choices = COMPLETE_TEMPLATES if complete else range(len(_TEMPLATES))
        t = _TEMPLATES[choices[int(rng.integers(len(choices)))]]
    else:
        t = _TEMPLATES[template]
    phrases = _DIRECTION_PHRASES[spec.direction]
    motion = phrases[0] if template is not None else phrases[int(rng.integers(len(phrases)))]
    return t.format(
        color=spec.color, shape=spec.shape, motion=motion, background=spec.background, size=spec.size, speed=spec.speed
    )


_WORD = re.compile(r"[a-z]+")
_DIRECTION_WORDS = {
    "left": "left",
    "right": "right",
    "up": "up",
    "upward": "up",
    "rising": "up",
    "down": "down",
    "downward": "down",
    "falling": "down",
}


# Each attribute's words in a caption, and what they name.
_VOCABULARY: dict[str, dict[str, str]] = {
    "color": {c: c for c in COLORS},
    "shape": {x: x for x in SHAPES},
    "direction": _DIRECTION_WORDS,
    "background": {b: b for b in BACKGROUNDS},
    "size": {z: z for z in SIZES},
    "speed": {v: v for v in SPEEDS},
}


def _named(words: list[str]) -> dict[str, str]:
    """Per attribute the caption names, the value of its first word."""
    found = {a: next((vocab[w] for w in words if w in vocab), None) for a, vocab in _VOCABULARY.items()}
    return {a: v for a, v in found.items() if v is not None}


def named_attributes(text: str) -> frozenset[str]:
    """The attributes (``ClipSpec`` fields) a caption names. Judge a clip only on these: an attribute its
    prompt leaves out (size and speed often are) is the model's free choice."""
    return frozenset(_named(_WORD.findall(text.lower())))


def parse_caption(text: str) -> ClipSpec | None:
    """Read the attributes back from a caption; None if it does not name colour, shape, direction and
    background. Size and speed default to the data's defaults where it leaves them out.

    Background words and object colours are disjoint, so the first object colour
    is the object's and the word before "background"/"backdrop" is the background.
    """
    named = _named(_WORD.findall(text.lower()))
    if not {"color", "shape", "direction", "background"} <= named.keys():
        return None
    assert named["direction"] in DIRECTIONS
    return ClipSpec(**named)
