"""Chaining attention processors on the cross-attention (``attn2``) modules of Wan blocks.

Chorus' processors (capture, TGAA) wrap whatever processor a module has (``inner``) instead of
replacing it, so they stack, and removing one splices it out of the chain and puts back exactly the
object that was there before, whatever the order of removal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def cross_attention_modules(transformer: torch.nn.Module, layers: Iterable[int] | None) -> list[tuple[int, Any]]:
    """(block index, attn2) for ``layers`` (None: every block)."""
    blocks = transformer.blocks
    chosen = range(len(blocks)) if layers is None else layers
    return [(i, blocks[i].attn2) for i in chosen]


def wrap_cross_attention(
    transformer: torch.nn.Module, layers: Iterable[int] | None, make: Callable[[Any], Any], kind: type
) -> None:
    """Install ``make(inner)`` on the chosen attn2 modules; refuses to stack ``kind`` twice."""
    modules = cross_attention_modules(transformer, layers)
    for _, attn in modules:
        if _locate(attn, kind)[1] is not None:
            raise RuntimeError(f"{kind.__name__} is already applied")
    for _, attn in modules:
        attn.set_processor(make(attn.processor))


def unwrap_cross_attention(transformer: torch.nn.Module, kind: type) -> None:
    """Splice every ``kind`` processor out of the attn2 chains."""
    for _, attn in cross_attention_modules(transformer, None):
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
