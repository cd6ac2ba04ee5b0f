"""Edit pairs to calibrate on: from the shipped model's vocabulary, or from a user's prompts.

A vocabulary pair is a source clip and a target with exactly one attribute changed, both captioned with
one phrasing that names every attribute, so the prompt diff is the edited word(s) only. Each edit kind
(chorus.reuse.edit_kind) is calibrated on the swaps of its attributes (``KIND_ATTRIBUTES``). A prompt-file
pair is a prompt and its nearest neighbour by the cache's own embedder: the source a lookup would find.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from chorus.cache.embedder import PromptEmbedder
from chorus.data.captions import caption
from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, ClipSpec, all_specs

VOCABULARY: dict[str, tuple[str, ...]] = {
    "color": tuple(COLORS),
    "shape": SHAPES,
    "direction": tuple(DIRECTIONS),
    "background": tuple(BACKGROUNDS),
    "size": tuple(SIZES),
    "speed": tuple(SPEEDS),
}
PAIR_TEMPLATE = 2  # chorus.data.captions' phrasing that names all six attributes
# The edit kind a swap of each attribute is (what the kind classifier reads it as: tests/unit).
KIND_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "appearance": ("color",),
    "identity": ("shape",),
    "motion": ("direction", "speed"),
    "scene": ("background",),
    "layout": ("size",),
}


@dataclass(frozen=True)
class EditPair:
    """A cached prompt (``source``) and the new one (``target``); vocabulary pairs also say which
    attribute the edit changes and what the target must show, for the attribute checker."""

    source: str
    target: str
    attribute: str | None = None
    target_spec: ClipSpec | None = None


def edit_attributes(readable: Collection[str] | None = None, among: Collection[str] = tuple(VOCABULARY)) -> list[str]:
    """The vocabulary's attributes (of ``among``) an edit may change: those in ``readable`` (the checker's
    ``ATTRIBUTES``, when a checker judges the model), else all."""
    return [a for a in VOCABULARY if a in among and (readable is None or a in readable)]


def vocabulary_pairs(count: int, attributes: Sequence[str], seed: int) -> list[EditPair]:
    """``count`` pairs, the edited attribute taking turns over ``attributes``; sources drawn from the
    training side of the held-out split, the new value from the attribute's others."""
    rng = np.random.default_rng(seed)
    pool = all_specs(held_out=False)
    pairs = []
    for i in range(count):
        attribute = attributes[i % len(attributes)]
        source = pool[rng.integers(len(pool))]
        others = [v for v in VOCABULARY[attribute] if v != getattr(source, attribute)]
        target = replace(source, **{attribute: others[rng.integers(len(others))]})
        prompts = caption(source, template=PAIR_TEMPLATE), caption(target, template=PAIR_TEMPLATE)
        pairs.append(EditPair(*prompts, attribute, target))
    return pairs


def kind_pairs(per_kind: int, kinds: Sequence[str], readable: Collection[str] | None, seed: int) -> list[EditPair]:
    """``per_kind`` vocabulary pairs for each of ``kinds`` (``KIND_ATTRIBUTES``), each kind's attributes
    taking turns; only attributes in ``readable`` (the checker's, when one judges the model)."""
    return [
        p for offset, kind in enumerate(kinds) for p in one_kind_pairs(kind, per_kind, readable, seed * 1000 + offset)
    ]


def fresh_kind_pairs(kind: str, count: int, round_: int, readable: Collection[str] | None, seed: int) -> list[EditPair]:
    """``count`` more vocabulary pairs of ``kind`` for a calibration's ``round_``-th growth of that kind's
    pairs, drawn apart from ``kind_pairs(..., seed)``'s and from every other round's."""
    draw = np.random.SeedSequence([seed, list(KIND_ATTRIBUTES).index(kind), round_]).generate_state(1)[0]
    return one_kind_pairs(kind, count, readable, int(draw))


def one_kind_pairs(kind: str, count: int, readable: Collection[str] | None, seed: int) -> list[EditPair]:
    """``count`` pairs of ``kind``'s attributes (those in ``readable``) drawn with ``seed``; none where the
    judge reads none of them."""
    attributes = edit_attributes(readable, KIND_ATTRIBUTES[kind])
    return vocabulary_pairs(count, attributes, seed) if attributes else []


def read_prompts(path: Path) -> list[str]:
    """One prompt per line; blank lines and repeats dropped."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return list(dict.fromkeys(line for line in lines if line))


def neighbour_pairs(
    prompts: Sequence[str], embedder: PromptEmbedder, min_similarity: float, limit: int | None = None
) -> list[EditPair]:
    """Each prompt as a target, its nearest other prompt as the source, where their cosine similarity is
    at least ``min_similarity`` (the policy's: below it a lookup's match is a miss anyway); at most
    ``limit`` pairs, most similar first."""
    vectors = embedder.embed(list(prompts))
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    scored = [(float(similarity[i, j]), i, int(j)) for i, j in enumerate(nearest) if similarity[i, j] >= min_similarity]
    scored.sort(key=lambda item: -item[0])
    return [EditPair(prompts[j], prompts[i]) for _, i, j in scored[:limit]]
