"""What an edit changes, read from the words that differ between a cached prompt and a new one.

A reuse plan that is safe for a colour change (the layout is settled early, the colour late) can be
wrong for a new subject or a new camera move, and a mask's size cannot tell these apart. The kinds:
appearance (colour, material, texture, lighting, style or medium), identity (the subject or an object),
motion (action, direction, speed), scene (background, setting, weather, time of day), camera (shot,
angle, camera motion), layout (count, size, position). An edit has every kind its words change.

The prompts are aligned word by word (difflib, as ``prompt_diff`` does for tokens); each run of
differing words ("hunk") is read in three steps:

1. words of the lexicon (``edit_lexicon``) name their kind; position and direction words are read by
   what precedes them ("pan left" camera, "moving left" motion, "on the left of" layout); a noun that
   only changes number ("dog" -> "dogs") is a count; a verb of motion takes the nouns of its hunk with it
   ("lifting a table" -> "riding a bicycle" is one new action, not a new object);
2. a hunk with no lexicon word is embedded (MiniLM, the cache key's embedder) and takes the kind of its
   nearest lexicon entries: "platypus" lands among the animals, "Machu Picchu" among the places;
3. a hunk of prepositions only ("on" -> "under") is a position edit.

It needs no model beyond the shipped MiniLM and runs per request: a few short phrases are embedded,
and the prototypes once per process.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from chorus.reuse.edit_lexicon import (
    CAMERA_ONLY,
    CAMERA_VERBS,
    DIRECTIONAL,
    KINDS_WORDS,
    PREPOSITIONS,
    PROGRESSIVE,
    STOPWORDS,
    STYLE_CUES,
    STYLE_HEADS,
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_IRREGULAR_PLURALS = {"people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse"}
_IRREGULAR_PLURALS |= {"geese": "goose", "feet": "foot", "teeth": "tooth", "oxen": "ox"}
_NEIGHBOURS = 5  # nearest lexicon entries that vote on an unknown hunk's kind
_CONTEXT = 3  # words before a hunk that can make a direction word camera motion or a motion


class EditKind(StrEnum):
    appearance = "appearance"
    identity = "identity"
    motion = "motion"
    scene = "scene"
    camera = "camera"
    layout = "layout"


# A word in several lists takes the first kind here ("orange" is a colour before it is a fruit).
_PRIORITY = (EditKind.camera, EditKind.layout, EditKind.appearance, EditKind.scene, EditKind.motion, EditKind.identity)
_MOTION_WORDS = KINDS_WORDS["motion"]
_BACKDROPS = frozenset(("background", "backdrop", "backgrounds"))
PROTOTYPES = Path(__file__).with_name("edit_prototypes.npz")  # written by `python -m chorus.reuse.edit_kind`


class PhraseEmbedder(Protocol):
    """Maps phrases to L2-normalised rows (``chorus.cache.embedder.PromptEmbedder`` is one)."""

    name: str  # which embedding: shipped prototypes are used only for the one they were written with

    def embed(self, prompts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hunk:
    """One run of differing words: the source's, the target's, and the words just before it."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    before: tuple[str, ...]
    after: tuple[str, ...]
    names: frozenset[str] = frozenset()  # words of proper names ("Blue Lagoon"): not read as common words

    @property
    def words(self) -> tuple[str, ...]:
        return self.source + self.target


def words_of(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def proper_names(text: str) -> set[str]:
    """Words of runs of two or more capitalised words ("Mount Fuji", "Van Gogh"), lower-cased."""
    words = _WORD.findall(text)
    caps = [w[:1].isupper() and w.lower() not in STOPWORDS for w in words]
    return {
        w.lower()
        for i, w in enumerate(words)
        if caps[i] and ((i > 0 and caps[i - 1]) or (i + 1 < len(words) and caps[i + 1]))
    }


def singular(word: str) -> str:
    """A crude singular, enough to see that "dogs" and "dog" name one thing (a count edit)."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def hunks(source: str, target: str) -> list[Hunk]:
    """The differing runs of words; runs apart only by function words ("lifting a table") are one."""
    a, b = words_of(source), words_of(target)
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()]
    merged: list[list[int]] = []  # [i1, i2, j1, j2] per hunk
    for k, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            continue
        if (
            merged
            and k >= 2
            and all(w in STOPWORDS for w in a[ops[k - 1][1] : ops[k - 1][2]])
            and merged[-1][1] == ops[k - 1][1]
        ):
            merged[-1][1], merged[-1][3] = i2, j2  # absorb the function words between the two runs
        else:
            merged.append([i1, i2, j1, j2])
    names = frozenset(proper_names(source) | proper_names(target))
    return [
        Hunk(tuple(a[i1:i2]), tuple(b[j1:j2]), tuple(b[max(0, j1 - _CONTEXT) : j1]), tuple(b[j2 : j2 + 1]), names)
        for i1, i2, j1, j2 in merged
    ]


def lexicon_kind(word: str) -> EditKind | None:
    for kind in _PRIORITY:
        if word in KINDS_WORDS[kind.value] or singular(word) in KINDS_WORDS[kind.value]:
            return kind
    return None


def _direction_kind(hunk: Hunk, word: str) -> EditKind | None:
    """A position or direction word read by what precedes it (None: not such a word)."""
    if word not in DIRECTIONAL:
        return None
    context = set(hunk.before) | set(hunk.words)
    if context & CAMERA_VERBS:
        return EditKind.camera
    if word in CAMERA_ONLY:
        return None
    if any(w in _MOTION_WORDS and lexicon_kind(w) is EditKind.motion for w in hunk.before + hunk.words if w != word):
        return EditKind.motion
    return EditKind.layout if word not in ("in", "out", "up", "down") else None


def lexicon_entries() -> list[tuple[str, EditKind]]:
    """Every lexicon word with its kind: the prototypes an unknown hunk is compared with."""
    return [(w, EditKind(k)) for k, words in KINDS_WORDS.items() for w in sorted(words)]


def load_prototypes(embedder: PhraseEmbedder) -> tuple[np.ndarray, list[EditKind]]:
    """The lexicon's embeddings: shipped for the default MiniLM embedder (embedding ~800 words costs
    seconds on a loaded CPU, too long for a worker's first edit), computed for any other embedder or
    when the lexicon has changed since they were written."""
    entries = lexicon_entries()
    words, kinds = [w for w, _ in entries], [k for _, k in entries]
    if PROTOTYPES.exists():
        with np.load(PROTOTYPES) as shipped:
            same = str(shipped["embedder"]) == embedder.name and shipped["words"].tolist() == words
            if same and shipped["kinds"].tolist() == [k.value for k in kinds]:
                return shipped["vectors"].astype(np.float32), kinds
    return np.asarray(embedder.embed(words), dtype=np.float32), kinds


def write_prototypes(embedder: PhraseEmbedder, path: Path = PROTOTYPES) -> Path:
    """Embed the lexicon with ``embedder`` and store it where ``load_prototypes`` looks."""
    entries = lexicon_entries()
    vectors = np.asarray(embedder.embed([w for w, _ in entries]), dtype=np.float16)
    words, kinds = np.array([w for w, _ in entries]), np.array([k.value for _, k in entries])
    np.savez_compressed(path, embedder=np.array(embedder.name), words=words, kinds=kinds, vectors=vectors)
    return path


class EditKindClassifier:
    """Classifies prompt pairs into edit kinds; ``embedder`` reads the hunks the lexicon does not name."""

    def __init__(self, embedder: PhraseEmbedder) -> None:
        self.embedder = embedder

    @cached_property
    def _prototypes(self) -> tuple[np.ndarray, list[EditKind]]:
        return load_prototypes(self.embedder)

    def nearest_kinds(self, phrases: list[str]) -> list[EditKind]:
        """Per phrase, the kind of the lexicon entries nearest it in the embedding (a vote of the closest);
        one embedding call for all of them."""
        vectors, kinds = self._prototypes
        sims = np.asarray(self.embedder.embed(phrases), dtype=np.float32) @ vectors.T
        out = []
        for row in sims:
            votes: dict[EditKind, float] = {}
            for i in np.argsort(-row)[:_NEIGHBOURS]:
                votes[kinds[i]] = votes.get(kinds[i], 0.0) + float(row[i])
            out.append(max(votes, key=lambda k: votes[k]))
        return out

    def word_kinds(self, hunk: Hunk, side: tuple[str, ...], counted: set[str]) -> tuple[set[EditKind], list[str]]:
        """The kinds the lexicon reads in one side of a hunk, and the words it does not know."""
        if set(side) & STYLE_HEADS:
            return {EditKind.appearance}, []  # "Van Gogh style", "pixel art": one style's name
        action = bool(hunk.before) and hunk.before[-1] in PROGRESSIVE  # "is <verb>ing ..."
        kinds: set[EditKind] = set()
        unknown: list[str] = []
        for i, word in enumerate(side):
            following = side[i + 1 : i + 2] or hunk.after
            if word in STOPWORDS or singular(word) in counted:
                continue
            if action and word.endswith("ing"):
                kind: EditKind | None = EditKind.motion
            elif word in hunk.names:
                kind = None
            elif word in DIRECTIONAL:
                kind = _direction_kind(hunk, word)
            else:
                kind = lexicon_kind(word)
            if kind is EditKind.appearance and set(following) & _BACKDROPS:
                kind = EditKind.scene  # "a black background" -> "a white background" swaps the background
            if kind is not None:
                kinds.add(kind)
            elif word not in PREPOSITIONS and not word.isdigit():
                unknown.append(word)
        return kinds, unknown

    def hunk_kinds(self, hunk: Hunk) -> set[EditKind]:
        kinds: set[EditKind] = set()
        counted = {singular(w) for w in hunk.source} & {singular(w) for w in hunk.target}
        if any(singular(w) in counted and w not in hunk.target for w in hunk.source):
            kinds.add(EditKind.layout)  # the same noun, singular on one side and plural on the other
        unknown_sides: list[list[str]] = []
        for side in (hunk.source, hunk.target):
            side_kinds, unknown = self.word_kinds(hunk, side, counted)
            kinds |= side_kinds
            if unknown:
                unknown_sides.append(unknown)
        if EditKind.motion in kinds:
            kinds.discard(EditKind.identity)  # the objects of a new action belong to it
        if unknown_sides and not kinds - {EditKind.layout}:
            if STYLE_CUES & set(hunk.before[-2:] + hunk.after):
                kinds.add(EditKind.appearance)  # "in the style of X", "in X style"
            else:
                kinds |= set(self.nearest_kinds([" ".join(unknown) for unknown in unknown_sides]))
        if not kinds and any(w in PREPOSITIONS for w in hunk.words):
            kinds.add(EditKind.layout)
        return kinds

    def classify(self, source: str, target: str) -> frozenset[EditKind]:
        """The kinds of the edit from ``source`` to ``target``: empty when no content word differs."""
        return frozenset(k for h in hunks(source, target) for k in self.hunk_kinds(h))

    def classify_many(self, pairs: Sequence[tuple[str, str]]) -> list[frozenset[EditKind]]:
        return [self.classify(s, t) for s, t in pairs]


if __name__ == "__main__":
    from chorus.cache.embedder import MiniLMEmbedder

    print(write_prototypes(MiniLMEmbedder()))
