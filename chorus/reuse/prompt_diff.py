"""Which words, and which text tokens, differ between a cached (source) prompt and a new (target) one.

Sentence embeddings barely separate prompts that differ in one decisive word ("tilt up" vs "tilt
down"), so the reuse plan never relies on similarity alone: this word-level diff says what must be
recomputed. Words are aligned with difflib; differing words map, through the fast tokenizer's offset
mapping, to indices into the padded token sequence the transformer's cross-attention reads (the same
tokenizer call as the text encoder: truncated to ``max_length``; words past it have no tokens). An
encoder that rewrites prompts before tokenising (WanPipeline's prompt cleaning for UMT5) passes that
rewrite as ``clean``, so words and offsets index the text its tokenizer actually saw; ``diff_for`` reads
tokenizer, length and cleaning off the encoder.

For an inserted word the source has nothing to point at, so its side of the diff takes the source
word at the insertion point (the following word, else the preceding one): in "a circle" -> "a red
circle" the region to recompute is where the source attended to "circle". A deleted word has no
target tokens (nothing to amplify); its source tokens still locate the region.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

_WORD = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks, with their character spans


class DiffKind(StrEnum):
    IDENTICAL = "identical"  # same tokens: only seed/negative prompt can differ
    EDITED = "edited"  # some words differ
    UNRELATED = "unrelated"  # too much differs for a word-level edit to make sense


@dataclass(frozen=True)
class PromptDiff:
    kind: DiffKind
    source_words: tuple[str, ...] = ()
    target_words: tuple[str, ...] = ()
    source_tokens: tuple[int, ...] = ()  # indices into the source's padded token sequence
    target_tokens: tuple[int, ...] = ()  # indices into the target's padded token sequence
    changed_fraction: float = 0.0  # 1 - difflib ratio over words

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()} | {
            "kind": self.kind.value
        }


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _tokenize(tokenizer: Any, text: str, max_length: int) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    enc = tokenizer(
        text,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]], enc["special_tokens_mask"]


def _tokens_of(spans: list[tuple[str, int, int]], offsets: list[tuple[int, int]], special: list[int]) -> list[int]:
    return sorted(
        {
            i
            for _, start, end in spans
            for i, ((ts, te), sp) in enumerate(zip(offsets, special))
            if not sp and ts < end and te > start
        }
    )


def diff_for(encoder: Any, source: str, target: str, unrelated_fraction: float = 0.5) -> PromptDiff:
    """``diff_prompts`` with the text encoder's own tokenizer, length and prompt cleaning (if it has one)."""
    clean = getattr(encoder, "clean", None)
    return diff_prompts(source, target, encoder.tokenizer, encoder.max_tokens, unrelated_fraction, clean)


def diff_prompts(
    source: str,
    target: str,
    tokenizer: Any,
    max_length: int,
    unrelated_fraction: float = 0.5,
    clean: Callable[[str], str] | None = None,
) -> PromptDiff:
    """Align ``source`` and ``target`` word by word; ``unrelated_fraction`` is the changed share of words
    above which the prompts count as unrelated; ``clean``: the encoder's rewrite of a prompt, if any."""
    if clean is not None:
        source, target = clean(source), clean(target)
    src_ids, src_offsets, src_special = _tokenize(tokenizer, source, max_length)
    tgt_ids, tgt_offsets, tgt_special = _tokenize(tokenizer, target, max_length)
    if src_ids == tgt_ids:
        return PromptDiff(DiffKind.IDENTICAL)
    src, tgt = _words(source), _words(target)
    matcher = difflib.SequenceMatcher(a=[w for w, *_ in src], b=[w for w, *_ in tgt], autojunk=False)
    changed = 1.0 - matcher.ratio()
    if changed > unrelated_fraction:
        return PromptDiff(DiffKind.UNRELATED, changed_fraction=changed)
    src_spans: list[tuple[str, int, int]] = []
    tgt_spans: list[tuple[str, int, int]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        tgt_spans += tgt[j1:j2]
        if op == "insert" and src:
            src_spans.append(src[min(i1, len(src) - 1)])  # the anchor word at the insertion point
        else:
            src_spans += src[i1:i2]
    return PromptDiff(
        DiffKind.EDITED,
        source_words=tuple(w for w, *_ in src_spans),
        target_words=tuple(w for w, *_ in tgt_spans),
        source_tokens=tuple(_tokens_of(src_spans, src_offsets, src_special)),
        target_tokens=tuple(_tokens_of(tgt_spans, tgt_offsets, tgt_special)),
        changed_fraction=changed,
    )
