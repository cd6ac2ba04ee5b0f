"""Word-level prompt diffs mapped to the MiniLM tokenizer's padded token indices."""

import pytest

from chorus.models.text import shared_minilm
from chorus.reuse.prompt_diff import DiffKind, diff_prompts


@pytest.fixture(scope="module")
def diff():
    encoder = shared_minilm()

    def run(source: str, target: str):
        return diff_prompts(source, target, encoder.tokenizer, encoder.max_tokens)

    return run


def tokens(text: str) -> list[str]:
    tokenizer = shared_minilm().tokenizer
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


def test_camera_tilt_up_vs_down(diff):
    d = diff("camera tilt up", "camera tilt down")
    assert d.kind is DiffKind.EDITED
    assert (d.source_words, d.target_words) == (("up",), ("down",))
    assert [tokens("camera tilt up")[i] for i in d.source_tokens] == ["up"]
    assert [tokens("camera tilt down")[i] for i in d.target_tokens] == ["down"]
    assert d.source_tokens == d.target_tokens == (3,)  # [CLS] camera tilt up


def test_colour_swap_maps_to_the_colour_tokens_on_both_sides(diff):
    source = "a red circle moving left on a blue background"
    target = "a blue circle moving left on a red background"
    d = diff(source, target)
    assert d.kind is DiffKind.EDITED
    assert d.source_words == ("red", "blue") and d.target_words == ("blue", "red")
    assert [tokens(source)[i] for i in d.source_tokens] == ["red", "blue"]
    assert [tokens(target)[i] for i in d.target_tokens] == ["blue", "red"]


def test_added_adjective_anchors_the_source_on_the_following_word(diff):
    d = diff("a circle moving up", "a red circle moving up")
    assert d.target_words == ("red",) and [tokens("a red circle moving up")[i] for i in d.target_tokens] == ["red"]
    assert d.source_words == ("circle",) and d.source_tokens == (2,)


def test_dropped_adjective_has_source_tokens_only(diff):
    d = diff("a small green square", "a green square")
    assert d.source_words == ("small",) and d.source_tokens == (2,)
    assert d.target_words == () and d.target_tokens == ()


def test_subword_tokens_all_count(diff):
    source, target = "a circle spinning", "a circle somersaulting"
    d = diff(source, target)
    pieces = [tokens(target)[i] for i in d.target_tokens]
    assert len(pieces) > 1 and "".join(p.removeprefix("##") for p in pieces) == "somersaulting"


def test_identical_and_unrelated(diff):
    assert diff("A Red circle", "a red circle").kind is DiffKind.IDENTICAL  # uncased tokenizer: same tokens
    d = diff("a red circle moving left", "ocean waves at sunset, drone shot")
    assert d.kind is DiffKind.UNRELATED and d.source_tokens == () and d.changed_fraction > 0.5


def test_words_past_the_token_limit_have_no_tokens():
    encoder = shared_minilm()
    long = " ".join(["word"] * 40)
    d = diff_prompts(long + " up", long + " down", encoder.tokenizer, encoder.max_tokens)
    assert d.kind is DiffKind.IDENTICAL  # the change is truncated away: the transformer sees the same tokens
    d = diff_prompts("up " + long, "down " + long, encoder.tokenizer, encoder.max_tokens)
    assert d.source_tokens == d.target_tokens == (1,)
    assert d.to_dict()["kind"] == "edited"
