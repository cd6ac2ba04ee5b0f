"""Seeded prompt streams for the benchmark, saved as JSONL traces.

- similar: topic clusters (a base clip spec each) drawn with Zipf popularity; a cluster's later
  prompts edit one of its earlier prompts (colour, direction, shape, background, or add/drop the size
  adjective) or repeat its base prompt with a new seed. The situation Chorus targets.
- repeat: a few prompts, Zipf popularity, identical text with a new seed every time.
- unrelated: distinct specs in varied phrasings: the cache can rarely help; measures its overhead.

Only held-in colour x shape pairs are used (the model never saw the held-out ones). The first
``warmup`` requests of a trace are its cold phase (empty cache); the rest are the warm phase.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from chorus.data.captions import caption
from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, ClipSpec, all_specs

STREAMS = ("similar", "repeat", "unrelated")
EDITS = ("color", "direction", "shape", "background", "adjective")
_EDIT_SHARE = 0.8  # of a cluster's later requests; the rest repeat its base prompt with a new seed
_ZIPF_S = 1.1


@dataclass(frozen=True)
class TraceItem:
    index: int
    stream: str
    phase: str  # "cold" (warm-up prefix, cache starts empty) or "warm"
    prompt: str
    seed: int
    spec: ClipSpec
    domain: str = "shared"  # cache domain of the request's tenant
    edit: str | None = None  # what changed from ``parent`` (similar stream)
    parent: int | None = None  # index of the prompt it was derived from

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> TraceItem:
        raw = json.loads(line)
        return cls(**{**raw, "spec": ClipSpec(**raw["spec"])})


def _zipf(rng: np.random.Generator, n: int) -> int:
    weights = 1.0 / np.arange(1, n + 1) ** _ZIPF_S
    return int(rng.choice(n, p=weights / weights.sum()))


def _phrase(spec: ClipSpec, adjective: bool) -> str:
    """Fixed phrasing (template 0, or 1 with the size adjective), so an edit changes only its words."""
    return caption(spec, template=1 if adjective else 0)


def _edit(spec: ClipSpec, adjective: bool, rng: np.random.Generator) -> tuple[str, ClipSpec, bool]:
    kind = EDITS[int(rng.integers(len(EDITS)))]
    if kind == "adjective":
        return kind, spec, not adjective
    choices = {"color": COLORS, "direction": DIRECTIONS, "shape": SHAPES, "background": BACKGROUNDS}[kind]
    value = rng.choice([v for v in choices if v != getattr(spec, kind)])
    return kind, replace(spec, **{kind: str(value)}), adjective


def _plain_specs() -> list[ClipSpec]:
    """Held-in specs of the default size and speed: exactly what the fixed phrasings say."""
    return [s for s in all_specs(held_out=False) if (s.size, s.speed) == ("small", "slowly")]


def similar_stream(n: int, rng: np.random.Generator, clusters: int) -> list[tuple]:
    pool = _plain_specs()
    bases = [pool[i] for i in rng.choice(len(pool), size=clusters, replace=False)]
    members: dict[int, list[tuple[int, ClipSpec, bool]]] = {}  # cluster -> (index, spec, adjective)
    out = []
    for i in range(n):
        c = _zipf(rng, clusters)
        seen = members.setdefault(c, [])
        if not seen or rng.random() >= _EDIT_SHARE:
            spec, adjective, edit, parent = bases[c], False, None, (seen[0][0] if seen else None)
        else:
            while True:  # edits that land on a held-out pair are drawn again
                parent, source, adjective = seen[int(rng.integers(len(seen)))]
                edit, spec, adjective = _edit(source, adjective, rng)
                if not spec.held_out:
                    break
        seen.append((i, spec, adjective))
        out.append((_phrase(spec, adjective), spec, edit, parent))
    return out


def repeat_stream(n: int, rng: np.random.Generator, distinct: int) -> list[tuple]:
    pool = _plain_specs()
    specs = [pool[i] for i in rng.choice(len(pool), size=distinct, replace=False)]
    return [(_phrase(s, False), s, None, None) for s in (specs[_zipf(rng, distinct)] for _ in range(n))]


def unrelated_stream(n: int, rng: np.random.Generator) -> list[tuple]:
    pool = all_specs(held_out=False)
    picks = rng.choice(len(pool), size=n, replace=n > len(pool))
    return [(caption(pool[i], rng), pool[i], None, None) for i in picks]


def make_trace(stream: str, n: int, warmup: int, seed: int = 0) -> list[TraceItem]:
    """``n`` requests of ``stream``, the first ``warmup`` of them the cold phase."""
    rng = np.random.default_rng([seed, STREAMS.index(stream)])
    if stream == "similar":
        rows = similar_stream(n, rng, clusters=max(2, n // 8))
    elif stream == "repeat":
        rows = repeat_stream(n, rng, distinct=max(2, n // 10))
    else:
        rows = unrelated_stream(n, rng)
    seeds = rng.integers(2**31, size=n)
    return [
        TraceItem(i, stream, "cold" if i < warmup else "warm", prompt, int(seeds[i]), spec, edit=edit, parent=parent)
        for i, (prompt, spec, edit, parent) in enumerate(rows)
    ]


def save_trace(path: Path, items: list[TraceItem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(item.to_json() + "\n" for item in items))


def load_trace(path: Path) -> list[TraceItem]:
    return [TraceItem.from_json(line) for line in path.read_text().splitlines() if line.strip()]
