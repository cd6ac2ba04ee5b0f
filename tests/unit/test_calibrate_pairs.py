"""Calibration's edit pairs: one attribute changed per vocabulary pair; nearest neighbours from a prompt file."""

import numpy as np

from chorus.calibrate.pairs import (
    KIND_ATTRIBUTES,
    edit_attributes,
    kind_pairs,
    neighbour_pairs,
    read_prompts,
    vocabulary_pairs,
)
from chorus.data.captions import parse_caption


def test_vocabulary_pairs_change_exactly_the_named_attribute():
    attributes = edit_attributes(("color", "shape", "direction", "background", "size", "speed"))
    pairs = vocabulary_pairs(12, attributes, seed=3)
    assert [p.attribute for p in pairs] == attributes * 2  # the edited attribute takes turns
    for pair in pairs:
        source, target = parse_caption(pair.source), parse_caption(pair.target)
        assert target == pair.target_spec
        changed = [a for a in source.as_dict() if getattr(source, a) != getattr(target, a)]
        assert changed == [pair.attribute]
        assert len(set(pair.source.split()) ^ set(pair.target.split())) == 2  # one word each way


def test_only_attributes_the_checker_reads_are_edited():
    readable = ("color", "shape", "direction", "background")
    assert edit_attributes(readable) == list(readable)
    assert edit_attributes(None)[-2:] == ["size", "speed"]


class FakeEmbedder:
    """Fixed unit vectors per prompt, so the nearest neighbours are known."""

    name, dim = "fake", 2

    def __init__(self, angles: dict[str, float]) -> None:
        self.angles = angles

    def embed(self, prompts: list[str]) -> np.ndarray:
        return np.array([[np.cos(self.angles[p]), np.sin(self.angles[p])] for p in prompts], dtype=np.float32)


def test_each_prompt_is_paired_with_its_nearest_neighbour_above_the_floor(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red cat\n\na blue cat\na red cat\na green car\nsomething else\n")
    prompts = read_prompts(path)
    assert prompts == ["a red cat", "a blue cat", "a green car", "something else"]
    embedder = FakeEmbedder({"a red cat": 0.0, "a blue cat": 0.1, "a green car": 0.5, "something else": 2.0})
    pairs = neighbour_pairs(prompts, embedder, min_similarity=0.8)
    # cos 0.1 ~ 0.995 (the cats, both ways), cos 0.4 ~ 0.92 (the car's nearest: the blue cat); cos 1.5 < 0.8
    assert [(p.source, p.target) for p in pairs] == [
        ("a blue cat", "a red cat"),
        ("a red cat", "a blue cat"),
        ("a blue cat", "a green car"),
    ]
    assert len(neighbour_pairs(prompts, embedder, min_similarity=0.8, limit=1)) == 1


def test_kind_pairs_give_each_kind_its_own_swaps_and_the_classifier_reads_them_as_that_kind():
    from chorus.cache.embedder import MiniLMEmbedder
    from chorus.reuse.edit_kind import EditKindClassifier

    pairs = kind_pairs(4, list(KIND_ATTRIBUTES), None, seed=2)
    assert len(pairs) == 4 * len(KIND_ATTRIBUTES)
    classifier = EditKindClassifier(MiniLMEmbedder())
    for i, pair in enumerate(pairs):
        kind = list(KIND_ATTRIBUTES)[i // 4]
        assert pair.attribute in KIND_ATTRIBUTES[kind]
        assert classifier.classify(pair.source, pair.target) == {kind}
    motion = [p.attribute for p in pairs if p.attribute in KIND_ATTRIBUTES["motion"]]
    assert motion == ["direction", "speed"] * 2  # a kind's attributes take turns
    assert not kind_pairs(4, ["layout"], ("color",), seed=2)  # no attribute of the kind is read: no pairs
