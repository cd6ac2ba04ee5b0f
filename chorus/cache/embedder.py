"""Prompt embeddings: the cache key a lookup compares by cosine similarity."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PromptEmbedder(Protocol):
    """Anything that maps prompts to L2-normalised float32 vectors of a fixed size.

    ``name`` goes into the cache namespace: vectors of different embedders never meet.
    The index column is ``vector(384)``: an embedder of another size needs a migration.
    """

    name: str
    dim: int

    def embed(self, prompts: list[str]) -> np.ndarray:
        """float32 array (len(prompts), dim), each row of unit length."""
        ...


class MiniLMEmbedder:
    """The offline all-MiniLM-L6-v2 sentence embedding (mean-pooled, 384-d)."""

    dim = 384

    def __init__(self, max_tokens: int = 32, device: str = "cpu") -> None:
        from chorus.models.text import shared_minilm

        # Shared with the text encoder of models that condition on MiniLM: loaded once per process.
        self.encoder = shared_minilm(max_tokens, device)
        self.name = f"all-minilm-l6-v2/{max_tokens}"

    def embed(self, prompts: list[str]) -> np.ndarray:
        return self.encoder.embed(prompts).float().cpu().numpy()
