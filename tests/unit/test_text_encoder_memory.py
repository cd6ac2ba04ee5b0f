"""The MiniLM encoder runs each prompt once: the cache key and the token states share its forward."""

import torch

from chorus.models.text import MiniLMTextEncoder


class CountingForwards:
    """Wraps the encoder's model and records each batch it runs."""

    def __init__(self, encoder: MiniLMTextEncoder) -> None:
        self.model, self.batches = encoder.model, []
        encoder.model = self

    def __call__(self, **batch):
        self.batches.append(len(batch["input_ids"]))
        return self.model(**batch)


def test_embed_then_encode_runs_each_prompt_once_and_matches_a_fresh_encoder():
    encoder = MiniLMTextEncoder(remember=8)
    forwards = CountingForwards(encoder)
    prompts = ["a red circle moving left on a gray background", ""]
    key = encoder.embed(prompts[:1])
    encoding = encoder.encode(prompts)  # the prompt is remembered, the negative prompt is new
    again = encoder.encode(prompts)
    assert forwards.batches == [1, 1]

    fresh = MiniLMTextEncoder()
    assert torch.allclose(encoding.states, fresh.encode(prompts).states, atol=1e-5)
    assert torch.allclose(key, fresh.embed(prompts[:1]), atol=1e-6)
    assert torch.equal(encoding.states, again.states) and encoding.token_ids == again.token_ids


def test_remembers_a_bounded_number_of_prompts_least_recent_first_out():
    encoder = MiniLMTextEncoder(remember=2)
    forwards = CountingForwards(encoder)
    encoder.encode(["one", "two"])
    encoder.encode(["one"])  # "one" is now the most recent
    encoder.encode(["three"])  # evicts "two"
    encoder.encode(["one", "two"])
    assert forwards.batches == [2, 1, 1]


def test_a_memory_swapped_in_starts_empty_and_the_old_one_comes_back():
    encoder = MiniLMTextEncoder()
    forwards = CountingForwards(encoder)
    encoder.encode(["one"])
    own = encoder.new_memory()
    with encoder.remembering(own):
        encoder.encode(["one"])  # not in this memory: encoded again
        encoder.encode(["one"])
    encoder.encode(["one"])  # the first memory still holds it
    with encoder.remembering(own):
        encoder.encode(["one"])  # and so does the swapped-in one
    assert forwards.batches == [1, 1]
