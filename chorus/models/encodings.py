"""A worker-local LRU of text-encoder outputs, bounded in bytes.

A repeated prompt, and the (usually constant) negative prompt, cost one encoder call per worker. Prompts
are encoded one at a time, with the cache on or off, so a row never depends on which other prompts shared
its call: frames are bit-identical whether a row came from the cache or the encoder. Keys are the model
revision and the prompt after the encoder's own cleaning (``chorus.fingerprint.clean_prompt``); a card's
LoRA is fused into the transformer only, so it does not key the encoder's output.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from cachetools import LRUCache

from chorus.config import get_settings
from chorus.fingerprint import clean_prompt
from chorus.models.base import PromptEncoding
from chorus.models.catalog import ModelCard


@dataclass(frozen=True)
class EncodedPrompt:
    states: torch.Tensor  # (tokens, text_dim)
    token_ids: list[int]

    @property
    def nbytes(self) -> int:
        return self.states.numel() * self.states.element_size() + 8 * len(self.token_ids)


class EncodingCache:
    """``encode`` through the LRU; ``hits`` and ``misses`` count prompts since the process started."""

    def __init__(self, max_bytes: int, revision: str, text_encoder: str) -> None:
        self.revision, self.text_encoder = revision, text_encoder
        # cachetools evicts least recently used rows until the new one fits; a row above the bound is not kept.
        self._rows: LRUCache[tuple[str, str], EncodedPrompt] = LRUCache(
            maxsize=max(int(max_bytes), 0), getsizeof=lambda row: row.nbytes
        )
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._reported = (0, 0)

    def unreported(self) -> tuple[int, int]:
        """(hits, misses) since the last call: what the worker adds to the service's counters."""
        with self._lock:
            now = (self.hits, self.misses)
            delta, self._reported = (now[0] - self._reported[0], now[1] - self._reported[1]), now
        return delta

    def empty_like(self) -> EncodingCache:
        """An empty LRU of the same bound and keys (the benchmark gives each system its own)."""
        return EncodingCache(self._rows.maxsize, self.revision, self.text_encoder)

    @property
    def nbytes(self) -> int:
        return int(self._rows.currsize)

    def encode(self, prompts: list[str], encode_one: Callable[[str], PromptEncoding]) -> PromptEncoding:
        """Each prompt's row from the LRU or from ``encode_one([prompt])``'s single row, stacked in order."""
        fresh: dict[tuple[str, str], EncodedPrompt] = {}
        rows = []
        for prompt in prompts:
            key = (self.revision, clean_prompt(prompt, self.text_encoder))
            with self._lock:
                row = fresh.get(key) or self._rows.get(key)
                self.hits += row is not None
            if row is None:
                encoded = encode_one(prompt)
                row = fresh[key] = EncodedPrompt(encoded.states[0], list(encoded.token_ids[0]))
                with self._lock:
                    self.misses += 1
                    if row.nbytes <= self._rows.maxsize:
                        self._rows[key] = row
            rows.append(row)
        return PromptEncoding(states=torch.stack([row.states for row in rows]), token_ids=[r.token_ids for r in rows])


def encoding_cache_for(card: ModelCard) -> EncodingCache:
    """An adapter's LRU, bounded by the settings (CHORUS_TEXT_ENCODING_CACHE_MB)."""
    return EncodingCache(get_settings().text_encoding_cache_mb * 2**20, card.revision, card.text_encoder)
