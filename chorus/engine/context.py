"""Stage 2 with context: the region's tokens attend to the whole video, not only to each other.

A Stage-2 forward runs projections, MLPs and cross-attention on the region's tokens only; in each
self-attention their queries read two sets of keys and values:
- their own (the tokens being recomputed: the region, and a halo around it whose outputs are dropped),
- the source run's at the same step and block for every other token, recorded on the source's full
  forward (both CFG passes), optionally average-pooled over (t, h, w) cells
  (``CaptureConfig.context_stride``) to cut what an entry stores. A pooled cell stands for its tokens:
  its logit gets log(cell size), so a cell of equal keys weighs what its tokens would. Cells that
  overlap the recomputed tokens are left out: the target's own keys replace the source's there.
With stride (1, 1, 1) and a region covering the whole grid this is the full forward; with no source
context a row attends to its own tokens only (the context-free Stage 2).

Rows of one Stage-2 forward may have regions of different sizes: their token lists are padded (by
repeating a real token) and the padding is masked out of every row's keys, so the batched forward gives
each row what its own forward would.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from chorus.engine.attention_hooks import AttentionCall, AttentionHook, hook_attention, unhook_attention
from chorus.engine.capture import Grid


def _pool(tokens: torch.Tensor, grid: Grid, stride: Grid) -> torch.Tensor:
    """(rows, N, D) tokens on ``grid`` -> (rows, cells, D) averaged over ``stride`` cells."""
    if stride == (1, 1, 1):
        return tokens
    cube = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)
    cube = F.avg_pool3d(cube, stride, stride, ceil_mode=True)
    return cube.flatten(2).transpose(1, 2)


def cell_log_sizes(grid: Grid, stride: Grid) -> torch.Tensor:
    """log(tokens per pooled cell), (cells,): border cells of a grid that ``stride`` does not divide hold fewer."""
    ones = torch.ones(1, 1, *grid)
    counts = F.avg_pool3d(ones, stride, stride, ceil_mode=True) * math.prod(stride)
    return counts.flatten().log()


def covered_cells(mask: torch.Tensor, stride: Grid) -> torch.Tensor:
    """Flat bool (cells,): the pooled cells that hold any token of ``mask`` (t, h, w)."""
    return F.max_pool3d(mask.float()[None, None], stride, stride, ceil_mode=True).flatten() > 0


@dataclass
class RowContext:
    """What one input row of a Stage-2 forward attends to besides its own tokens."""

    keys: torch.Tensor  # (layers, cells, inner) the source's pooled keys at this step and pass
    values: torch.Tensor  # (layers, cells, inner)
    bias: torch.Tensor  # (cells,) log(cell size), -inf where the cell overlaps the recomputed tokens


class ContextState:
    """What the self-attention hooks do in the coming forward: pass through (default), record the
    source's keys/values for some rows, or run a Stage-2 forward (padded queries, with or without context)."""

    def __init__(self, stride: Grid = (1, 1, 1), dtype: torch.dtype = torch.float16) -> None:
        self.stride, self.dtype = stride, dtype
        self.reset()
        self.recorded: dict[Hashable, dict[int, dict[tuple[int, int], torch.Tensor]]] = defaultdict(
            lambda: defaultdict(dict)
        )

    def reset(self) -> None:
        self.step: int | None = None
        self.record_rows: list[tuple[Hashable, int] | None] = []  # per input row: (key, pass) or None
        self.grid: Grid | None = None
        self.valid: torch.Tensor | None = None  # (rows, n) bool: real query tokens of a Stage-2 forward
        self.rows: list[RowContext | None] = []

    # --- recording on the source's full forward ---
    def begin_record(self, step: int, grid: Grid, rows: Sequence[tuple[Hashable, int] | None]) -> None:
        self.reset()
        self.step, self.grid, self.record_rows = step, grid, list(rows)

    def record(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        chosen = [j for j, owner in enumerate(self.record_rows) if owner is not None]
        pooled_k = _pool(keys[chosen].flatten(2), self.grid, self.stride)
        pooled_v = _pool(values[chosen].flatten(2), self.grid, self.stride)
        for i, j in enumerate(chosen):
            key, pass_ = self.record_rows[j]
            self.recorded[key][self.step][(layer, pass_)] = torch.stack([pooled_k[i], pooled_v[i]]).to(
                "cpu", self.dtype
            )

    def context(self, key: Hashable) -> dict[int, torch.Tensor]:
        """The key's recorded context: step -> (passes, layers, 2, cells, inner)."""
        out = {}
        for step, parts in self.recorded.get(key, {}).items():
            layers = 1 + max(layer for layer, _ in parts)
            passes = 1 + max(pass_ for _, pass_ in parts)
            out[step] = torch.stack(
                [torch.stack([parts[(layer, p)] for layer in range(layers)]) for p in range(passes)]
            )
        return out

    # --- Stage 2 ---
    def begin_stage2(self, valid: torch.Tensor, rows: Sequence[RowContext | None]) -> None:
        self.reset()
        self.valid, self.rows = valid, list(rows)

    @property
    def mode(self) -> str | None:
        if self.valid is not None:
            return "stage2"
        return "record" if any(r is not None for r in self.record_rows) else None

    def extra_keys(self, layer: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(keys, values, bias) of the rows' context for ``layer``: (rows, cells, inner) twice and (rows, cells);
        None when no row has context. A row without context gets -inf bias everywhere."""
        present = [r for r in self.rows if r is not None]
        if not present:
            return None
        cells, inner = present[0].keys.shape[1:]
        keys = torch.zeros(len(self.rows), cells, inner, dtype=like.dtype, device=like.device)
        values, bias = torch.zeros_like(keys), torch.full((len(self.rows), cells), -math.inf, device=like.device)
        for j, row in enumerate(self.rows):
            if row is not None:
                keys[j], values[j], bias[j] = row.keys[layer], row.values[layer], row.bias
        return keys, values, bias


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's rotary embedding, as diffusers' WanAttnProcessor applies it."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


class ContextHook(AttentionHook):
    """On a block's self-attention: passes through, records, or runs Stage 2's attention."""

    name = "chorus_context"
    attention = "attn1"

    @staticmethod
    def _qkv(attn: Any, hidden: torch.Tensor, rotary: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        query = attn.norm_q(attn.to_q(hidden)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(hidden)).unflatten(2, (attn.heads, -1))
        value = attn.to_v(hidden).unflatten(2, (attn.heads, -1))
        if rotary is not None:
            query, key = _rotate(query, *rotary), _rotate(key, *rotary)
        return query, key, value

    def attend(self, attn: Any, call: AttentionCall) -> torch.Tensor:
        mode = self.state.mode
        if mode != "stage2":
            if mode == "record":  # the forward's output stays the stock processor's, bit for bit
                _, key, value = self._qkv(attn, call.hidden, call.rotary)
                self.state.record(self.layer, key, value)
            return self.pass_on(call)
        query, key, value = self._qkv(attn, call.hidden, call.rotary)
        bias = torch.zeros(self.state.valid.shape, device=query.device).masked_fill(~self.state.valid, -math.inf)
        extra = self.state.extra_keys(self.layer, key)
        if extra is not None:
            more_k, more_v, more_bias = extra
            key = torch.cat([key, more_k.unflatten(2, (attn.heads, -1))], 1)
            value = torch.cat([value, more_v.unflatten(2, (attn.heads, -1))], 1)
            bias = torch.cat([bias, more_bias], 1)
        out = F.scaled_dot_product_attention(
            query.transpose(1, 2),
            key.transpose(1, 2),
            value.transpose(1, 2),
            attn_mask=bias[:, None, None].to(query.dtype),
        )
        out = out.transpose(1, 2).flatten(2).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


def apply_context(transformer: torch.nn.Module, state: ContextState) -> ContextState:
    """Install the context hook, driven by ``state``, on every block's self-attention."""
    return hook_attention(transformer, ContextHook, state)


def remove_context(transformer: torch.nn.Module) -> None:
    unhook_attention(transformer, ContextHook)
