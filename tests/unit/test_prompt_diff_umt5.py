"""The prompt diff on a UMT5 (SentencePiece Unigram) tokenizer: token indices point at the rows of the
states WanPipeline's encoding gives the cleaned prompt."""

import pytest

from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from chorus.reuse.prompt_diff import DiffKind, diff_for
from tests.fixtures.wan_folder import write_wan_folder


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("umt5")
    card = ModelCard.load(add_model(write_wan_folder(root / "wan"), root / "models", Options()))
    return adapter_for(card)


def pieces(adapter, prompt: str, index: tuple[int, ...]) -> str:
    ids = adapter.encode_prompts([prompt]).token_ids[0]
    return "".join(adapter.text_encoder.tokenizer.convert_ids_to_tokens([ids[i] for i in index]))


def test_an_edited_word_maps_to_its_sentencepiece_tokens(adapter):
    source, target = "a red square moving right", "a green square moving right"
    d = diff_for(adapter.text_encoder, source, target)
    assert d.kind is DiffKind.EDITED and (d.source_words, d.target_words) == (("red",), ("green",))
    assert pieces(adapter, source, d.source_tokens).strip("▁") == "red"
    assert pieces(adapter, target, d.target_tokens).strip("▁") == "green"


def test_offsets_index_the_cleaned_prompt_the_encoder_saw(adapter):
    source, target = "a  red   square &amp; a circle", "a  red   square &amp; a triangle"
    d = diff_for(adapter.text_encoder, source, target)
    assert (d.source_words, d.target_words) == (("circle",), ("triangle",))
    assert pieces(adapter, source, d.source_tokens).strip("▁") == "circle"
    assert pieces(adapter, target, d.target_tokens).strip("▁") == "triangle"
    assert diff_for(adapter.text_encoder, "a red  square", " a red square").kind is DiffKind.IDENTICAL
