"""Chaining attention processors on the attention modules of Wan blocks.

Chorus' processors (capture, TGAA on the cross-attention ``attn2``; Stage 2's context on the
self-attention ``attn1``) wrap whatever processor a module has (``inner``) instead of replacing it, so
they stack, and removing one splices it out of the chain and puts back exactly the object that was
there before, whatever the order of removal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

Attention = Literal["attn1", "attn2"]  # self-attention over video tokens, cross-attention to the text


def attention_modules(
    transformer: torch.nn.Module, layers: Iterable[int] | None, name: Attention = "attn2"
) -> list[tuple[int, Any]]:
    """(block index, the block's ``name`` module) for ``layers`` (None: every block)."""
    blocks = transformer.blocks
    chosen = range(len(blocks)) if layers is None else layers
    return [(i, getattr(blocks[i], name)) for i in chosen]


def wrap_attention(
    transformer: torch.nn.Module,
    layers: Iterable[int] | None,
    make: Callable[[int, Any], Any],
    kind: type,
    name: Attention = "attn2",
) -> None:
    """Install ``make(block index, inner)`` on the chosen modules; refuses to stack ``kind`` twice."""
    modules = attention_modules(transformer, layers, name)
    for _, attn in modules:
        if _locate(attn, kind)[1] is not None:
            raise RuntimeError(f"{kind.__name__} is already applied")
    for i, attn in modules:
        attn.set_processor(make(i, attn.processor))


def unwrap_attention(transformer: torch.nn.Module, kind: type, name: Attention = "attn2") -> None:
    """Splice every ``kind`` processor out of the ``name`` chains."""
    for _, attn in attention_modules(transformer, None, name):
        parent, proc = _locate(attn, kind)
        if proc is None:
            continue
        if parent is None:
            attn.set_processor(proc.inner)
        else:
            parent.inner = proc.inner


def _locate(attn: Any, kind: type) -> tuple[Any | None, Any | None]:
    """(the processor wrapping the ``kind`` one or None, the ``kind`` processor or None)."""
    parent, proc = None, attn.processor
    while proc is not None and not isinstance(proc, kind):
        parent, proc = proc, getattr(proc, "inner", None)
    return parent, proc
