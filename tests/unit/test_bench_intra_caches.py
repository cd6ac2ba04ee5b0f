"""The bench's intra-request caches on a tiny random Wan: each skips block work when attached (so its row can
differ from no cache) and leaves the model as it was when detached (so the next system runs plain)."""

import pytest
import torch

from chorus.bench.systems import BlockTokens, IntraCache
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate
from chorus.models.loader import load_adapter
from tests.fixtures.random_wan import write_random_wan

STEPS = 12


@pytest.fixture
def adapter(tmp_path):
    write_random_wan(tmp_path / "tiny", num_layers=3)
    load_adapter.cache_clear()
    yield load_adapter("tiny", tmp_path)
    load_adapter.cache_clear()


@pytest.mark.parametrize("cache", [IntraCache("fbc", 10.0), IntraCache("dbcache", 10.0)], ids=lambda c: c.label)
def test_an_intra_cache_skips_blocks_and_detaches_to_the_plain_model(adapter, cache: IntraCache) -> None:
    request = GenerationRequest.at_defaults(adapter.limits, "a red square moving right", 3, STEPS)
    counter = BlockTokens(adapter.transformer)
    plain = generate(adapter, [request])
    plain_tokens = counter.take()

    cache.attach(adapter.transformer, STEPS)  # a threshold no residual change reaches: reuse after warm-up
    try:
        runs = []
        for _ in range(2):
            cache.refresh(adapter.transformer, STEPS)
            runs.append(generate(adapter, [request]))
            assert counter.take() < 0.6 * plain_tokens
    finally:
        cache.detach(adapter.transformer)
    cached, again = runs
    assert torch.equal(again, cached)  # each request starts afresh: nothing left from the one before
    assert not torch.equal(cached, plain)

    assert torch.equal(generate(adapter, [request]), plain)
    assert counter.take() == plain_tokens
