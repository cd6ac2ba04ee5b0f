"""The text-encoder LRU: frames bit-identical on and off, bounded in bytes, keyed by the cleaned prompt."""

from dataclasses import replace

import pytest
import torch

from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.models.base import PromptEncoding
from chorus.models.catalog import ModelCard
from chorus.models.encodings import EncodingCache
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from tests.fixtures.wan_folder import write_wan_folder

REQUEST = GenerationRequest(
    "a red square moving right", negative_prompt="low quality", num_frames=5, height=32, width=32,
    num_inference_steps=3, guidance_scale=4.0, seed=3,
)  # fmt: skip


class CountingEncoder:
    """Wraps an adapter's text encoder and counts the prompts it encodes."""

    def __init__(self, adapter) -> None:
        self.inner, self.prompts = adapter.text_encoder.encode, []
        adapter.text_encoder.encode = self

    def __call__(self, prompts, *args):
        self.prompts.extend(prompts)
        return self.inner(prompts, *args)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("umt5")
    folder = write_wan_folder(root / "folder")
    return adapter_for(ModelCard.load(add_model(folder, root / "models", Options(model_id="tiny-umt5"))))


def test_frames_are_bit_identical_with_the_lru_on_and_off(adapter):
    counting = CountingEncoder(adapter)
    adapter.encodings = EncodingCache(0, adapter.revision, "umt5")  # off: nothing is kept
    off = generate_with_reuse(adapter, [REQUEST, replace(REQUEST, seed=4)]).frames
    assert counting.prompts == [REQUEST.prompt, REQUEST.negative_prompt]  # a repeat within one call is shared
    adapter.encodings = EncodingCache(2**30, adapter.revision, "umt5")
    first = generate_with_reuse(adapter, [REQUEST]).frames
    spaced = replace(REQUEST, prompt="a red  square moving right ")  # UMT5's cleaning makes it the same prompt
    again = generate_with_reuse(adapter, [spaced, replace(REQUEST, seed=4)]).frames
    assert len(counting.prompts) == 4  # the second run encoded nothing
    assert (adapter.encodings.hits, adapter.encodings.misses) == (4, 2)
    assert torch.equal(off[0], first[0]) and torch.equal(off, again)


def fake_encode(prompt: str) -> PromptEncoding:
    """A fake encoder (no model): 1 KiB of states per prompt, its value the prompt's length."""
    return PromptEncoding(states=torch.full((1, 16, 16), float(len(prompt))), token_ids=[[len(prompt)]])


def test_evicts_least_recently_used_rows_within_its_byte_budget():
    row = 16 * 16 * 4 + 8
    cache = EncodingCache(2 * row, "rev", "minilm")
    cache.encode(["a", "bb"], fake_encode)
    cache.encode(["a"], fake_encode)  # "a" is now the most recent
    cache.encode(["ccc"], fake_encode)  # evicts "bb"
    assert cache.nbytes <= 2 * row
    assert (cache.hits, cache.misses) == (1, 3)
    cache.encode(["a", "ccc"], fake_encode)
    assert (cache.hits, cache.misses) == (3, 3)
    cache.encode(["bb"], fake_encode)
    assert cache.misses == 4 and cache.nbytes <= 2 * row
    assert cache.unreported() == (3, 4) and cache.unreported() == (0, 0)


def test_other_revisions_never_share_a_row():
    shared = EncodingCache(2**20, "rev-a", "minilm")
    shared.encode(["a"], fake_encode)
    shared.revision = "rev-b"
    shared.encode(["a"], fake_encode)
    assert shared.misses == 2
