"""Token-Guided Attention Amplification (TGAA) as a hook on the cross-attention.

In Stage 2 the reused latent already encodes the source prompt; TGAA makes the target's differing
words win by multiplying their cross-attention weights by ``alpha`` before normalisation: log(alpha)
is added to those logits, so every row still sums to one. Only the conditional rows are amplified (rows
[0, B) of a forward, cond first, then the unconditional pass of the guided rows): amplifying the
unconditional pass too would cancel out in the guidance difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from chorus.engine.attention_hooks import AttentionCall, AttentionHook, hook_attention, unhook_attention


@dataclass(frozen=True)
class TGAAConfig:
    # Weight multiplier for the target's differing tokens at a hit's first Stage-2 step; 1: off, the default:
    # it did not earn its place (on the shipped model it lost accuracy at 4 steps, changed nothing at 20).
    alpha: float = 1.0
    layers: tuple[int, ...] | None = None  # block indices whose cross-attention is amplified; None: all
    decay: float = 1.0  # the amplification (alpha - 1) shrinks by this factor at each later Stage-2 step

    def alpha_at(self, stage2_step: int) -> float:
        """The multiplier at the ``stage2_step``-th (0-based) Stage-2 step of a hit: strongest at the first,
        where the reused latent still has the most to give up."""
        return 1.0 + (self.alpha - 1.0) * self.decay**stage2_step


class TGAAState:
    """The token indices to amplify, and by how much, for each conditional row of the coming forwards;
    empty between uses."""

    def __init__(self, config: TGAAConfig) -> None:
        self.config = config
        self.reset()

    def set(self, tokens: Sequence[Sequence[int]], alphas: Sequence[float]) -> None:
        self.tokens, self.alphas = [tuple(t) for t in tokens], list(alphas)

    def reset(self) -> None:
        self.tokens: list[tuple[int, ...]] = []
        self.alphas: list[float] = []

    def logit_bias(self, batch: int, text_len: int, like: torch.Tensor) -> torch.Tensor | None:
        """(batch, text_len) additive bias, or None when nothing is amplified (the stock path, bit for bit)."""
        if all(a == 1.0 for a in self.alphas) or not any(self.tokens):
            return None
        if not len(self.tokens) <= batch <= 2 * len(self.tokens):
            raise ValueError(f"TGAA holds tokens for {len(self.tokens)} prompts but the batch has {batch} rows")
        bias = torch.zeros(batch, text_len, dtype=like.dtype, device=like.device)
        for row, (idx, alpha) in enumerate(zip(self.tokens, self.alphas)):
            bias[row, list(idx)] = math.log(alpha)
        return bias


class TGAAHook(AttentionHook):
    """Adds the state's bias to the attention mask the rest of the chain (diffusers' stock processor) gets."""

    name = "chorus_tgaa"

    def attend(self, attn: torch.nn.Module, call: AttentionCall) -> torch.Tensor:
        bias = self.state.logit_bias(call.hidden.shape[0], call.text.shape[1], call.hidden)
        if bias is not None:
            call = call._replace(mask=bias if call.mask is None else call.mask + bias)
        return self.pass_on(call)


def apply_tgaa(transformer: torch.nn.Module, config: TGAAConfig) -> TGAAState:
    """Install TGAA on the chosen cross-attention layers; returns the state to set tokens on."""
    return hook_attention(transformer, TGAAHook, TGAAState(config), config.layers)


def remove_tgaa(transformer: torch.nn.Module) -> None:
    unhook_attention(transformer, TGAAHook)
