"""The latent replay pool of latent-space training: how many clips it encodes per batch, and what it keeps."""

import numpy as np
import torch

from chorus.train.data import LatentPool


class FakeLatentStream:
    """A fake autoencoded stream: clip ``i`` is a tensor filled with ``i``; counts the clips it encoded."""

    def __init__(self) -> None:
        self.encoded = 0

    def batch(self, size: int) -> tuple[torch.Tensor, list[str]]:
        ids = range(self.encoded, self.encoded + size)
        self.encoded += size
        return torch.stack([torch.full((2, 3), float(i)) for i in ids]), [f"clip {i}" for i in ids]


def test_the_pool_fills_with_whole_batches_then_encodes_only_fresh_clips():
    stream = FakeLatentStream()
    pool = LatentPool(stream, np.random.default_rng(0), capacity=32, fresh=2)
    latents, captions = pool.batch(4)
    assert stream.encoded == 4 and captions == [f"clip {i}" for i in range(4)]  # filling: the batch itself
    pool.batch(4)
    assert stream.encoded == 8 and len(pool.latents) == 8  # a quarter of 32 held: filling ends
    for _ in range(20):
        latents, captions = pool.batch(4)
        assert stream.encoded - 8 <= 2 * (_ + 1) and latents.shape == (4, 2, 3)
        assert all(latent[0, 0] == int(text.split()[1]) for latent, text in zip(latents, captions))
    assert stream.encoded == 8 + 2 * 20 and len(pool.latents) == 32  # full: the oldest clips were replaced
    kept = {int(t.split()[1]) for t in pool.captions}
    assert kept == set(range(stream.encoded - 32, stream.encoded))
