"""The edit-kind classifier: on the held-out public pairs (accuracy bar), on the model's own captions,
and its word alignment. Uses the shipped MiniLM (offline)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from bench.edit_kinds.measure import load, score
from chorus.data.captions import COMPLETE_TEMPLATES, caption
from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, ClipSpec
from chorus.reuse.edit_kind import (
    PROTOTYPES,
    EditKind,
    EditKindClassifier,
    hunks,
    lexicon_entries,
    load_prototypes,
    proper_names,
    singular,
)

HELD_OUT_BAR = 0.90  # exact-set accuracy the issue asks for


@pytest.fixture(scope="module")
def classifier() -> EditKindClassifier:
    from chorus.cache.embedder import MiniLMEmbedder

    return EditKindClassifier(MiniLMEmbedder())


def test_held_out_public_pairs_meet_the_bar(classifier: EditKindClassifier) -> None:
    rows = load("test")
    assert len(rows) >= 200 and {k for r in rows for k in r["kinds"]} == {k.value for k in EditKind}
    scores = score(rows, [classifier.classify(r["source"], r["target"]) for r in rows])
    assert scores.exact >= HELD_OUT_BAR, scores
    for kind, figures in scores.per_kind.items():  # no kind is carried by the others
        assert figures["recall"] >= 0.8, (kind, figures)


BASE = ClipSpec("red", "circle", "left", "black", "small", "slowly")
# One attribute of the clip swapped, and the kind that swap is.
SWAPS = {
    "color": (COLORS, EditKind.appearance),
    "shape": (SHAPES, EditKind.identity),
    "direction": (DIRECTIONS, EditKind.motion),
    "background": (BACKGROUNDS, EditKind.scene),
    "size": (SIZES, EditKind.layout),
    "speed": (SPEEDS, EditKind.motion),
}


@pytest.mark.parametrize("attribute", SWAPS)
def test_caption_swaps_have_their_kind(classifier: EditKindClassifier, attribute: str) -> None:
    values, kind = SWAPS[attribute]
    for value, template in itertools.product(values, COMPLETE_TEMPLATES):
        if value == getattr(BASE, attribute):
            continue
        target = dataclasses.replace(BASE, **{attribute: value})
        source_text, target_text = caption(BASE, template=template), caption(target, template=template)
        assert classifier.classify(source_text, target_text) == {kind}, (source_text, target_text)


def test_several_changes_give_several_kinds(classifier: EditKindClassifier) -> None:
    source = caption(BASE, template=COMPLETE_TEMPLATES[0])
    target = caption(dataclasses.replace(BASE, color="blue", background="white"), template=COMPLETE_TEMPLATES[0])
    assert classifier.classify(source, target) == {EditKind.appearance, EditKind.scene}


def test_identical_words_are_no_edit(classifier: EditKindClassifier) -> None:
    assert classifier.classify("A red circle.", "a red circle") == frozenset()


def test_unknown_words_take_the_kind_of_their_neighbours(classifier: EditKindClassifier) -> None:
    # None of these words is in the lexicon: MiniLM puts them among the animals, the places, the styles.
    assert classifier.classify("a photo of a platypus", "a photo of a wombat") == {EditKind.identity}
    assert classifier.classify("a boat on a lake in Patagonia", "a boat on a lake in Tasmania") == {EditKind.scene}
    assert classifier.classify("a hiker in the Sahara", "a hiker in the Himalayas") == {EditKind.scene}
    assert classifier.classify("a knight in the style of Mucha", "a knight in the style of Caravaggio") == {
        EditKind.appearance
    }


def test_direction_words_are_read_by_context(classifier: EditKindClassifier) -> None:
    assert classifier.classify("a forest, pan left", "a forest, pan right") == {EditKind.camera}
    assert classifier.classify("a dog moving left", "a dog moving right") == {EditKind.motion}
    assert classifier.classify("a dog on the left of a car", "a dog on the right of a car") == {EditKind.layout}


def test_hunks_join_runs_split_by_function_words() -> None:
    (hunk,) = hunks("two people are lifting a table", "two people are riding a bicycle")
    assert (hunk.source, hunk.target) == (("lifting", "a", "table"), ("riding", "a", "bicycle"))
    assert hunk.before[-1] == "are"
    assert len(hunks("a red ball and a blue cube", "a green ball and a blue sphere")) == 2


def test_count_and_names() -> None:
    assert [singular(w) for w in ("dogs", "people", "boxes", "glass", "ponies")] == [
        "dog",
        "person",
        "box",
        "glass",
        "pony",
    ]
    assert proper_names("Blue Lagoon, zoom in. A red car") == {"blue", "lagoon"}


def test_shipped_prototypes_are_the_lexicon_embedded_now(classifier: EditKindClassifier) -> None:
    """The shipped file is current: same words and kinds, and the embedder gives the same vectors (if
    the lexicon changes, `python -m chorus.reuse.edit_kind` rewrites it)."""
    assert PROTOTYPES.exists()
    vectors, kinds = load_prototypes(classifier.embedder)
    entries = lexicon_entries()
    assert kinds == [k for _, k in entries] and vectors.shape == (len(entries), 384)
    sample = [0, len(entries) // 2, len(entries) - 1]
    fresh = classifier.embedder.embed([entries[i][0] for i in sample])
    assert np.abs(vectors[sample] - fresh).max() < 1e-2  # stored as float16


class FakeEmbedder:
    """Fake embedder of another name: the shipped prototypes are not its space, so they are computed."""

    name, calls = "fake", 0

    def embed(self, prompts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = np.ones((len(prompts), 4), dtype=np.float32)
        return rows / 2.0


def test_another_embedder_gets_prototypes_of_its_own() -> None:
    fake = FakeEmbedder()
    vectors, _ = load_prototypes(fake)
    assert fake.calls == 1 and vectors.shape == (len(lexicon_entries()), 4)
