"""Seeded prompt streams for the benchmark, saved as JSONL traces.

- similar: topic clusters (a base clip spec each, one per ``_REQUESTS_PER_CLUSTER`` requests, so a longer
  stream has more distinct sources, not more repeats of a few) drawn with Zipf popularity; a cluster's
  later prompts edit one attribute of one of its earlier prompts (``EDITS``: colour, shape, direction,
  background, size, speed; each edit kind equally likely) or repeat its base prompt with a new seed.
  The situation Chorus targets.
- seed-variants: a few prompts, Zipf popularity, identical text with a new seed every time.
- unrelated: distinct specs in varied phrasings: the cache can rarely help; measures its overhead.

Every stream also holds exact repeats (``EXACT_REPEAT``: an earlier request's prompt and seed again, as
clients retrying without an idempotency key, templated apps with pinned seeds and gallery prompts send
them), ``repeat_share`` of its requests (``REPEAT_SHARE`` unless asked), each repeating an earlier request
drawn uniformly; they are drawn apart from the stream's own requests, so share 0 gives the stream as before.

Every prompt names all six attributes (the similar and seed-variants streams in one fixed phrasing, ``phrase``),
so the checker judges each of them, and an edit changes exactly one word of the prompt. ``TraceItem.kind``
says what a request is (an edit kind, a seed variant or new); the report's per-kind rows group by it.
Only held-in colour x shape pairs are used (the model never saw the held-out ones). The first
``warmup`` requests of a trace are its cold phase (empty cache); the rest are the warm phase.

How long a stream must be: the benchmark's quality figures are paired (the same requests and seeds with
the cache on and off), and the interval on a paired difference narrows with the number of requests on
which the two sides disagree and with the number of distinct sources (``chorus.bench.paired``); full mode
(``chorus.bench.runner.FULL``) is sized for +-3 points on its main comparison, and the report prints how
many requests its own run would have needed.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from chorus.data.captions import COMPLETE_TEMPLATES, caption
from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, ClipSpec, all_specs

STREAMS = ("similar", "seed-variants", "unrelated")
# Edit kinds, each one attribute of the spec: appearance, identity, motion, global scene, size, speed.
VOCABULARY: dict[str, Collection[str]] = {
    "color": COLORS,
    "shape": SHAPES,
    "direction": DIRECTIONS,
    "background": BACKGROUNDS,
    "size": SIZES,
    "speed": SPEEDS,
}
EDITS = tuple(VOCABULARY)
SEED_VARIANT, EXACT_REPEAT, NEW = "seed variant", "exact repeat", "new"  # the kinds that are not edits
REPEAT_SHARE = 0.2  # of every stream's requests: exact repeats of earlier ones
PHRASING = COMPLETE_TEMPLATES[0]  # one fixed phrasing naming every attribute, one word each
_EDIT_SHARE = 0.8  # of a cluster's later requests; the rest repeat its base prompt with a new seed
_REQUESTS_PER_CLUSTER = 4  # similar stream: clusters (distinct sources) = requests / this
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
    edit: str | None = None  # the attribute changed from ``parent`` (similar stream)
    parent: int | None = None  # index of the prompt it was derived from (or first sent, for a seed variant)
    exact: bool = False  # an exact repeat of ``parent``: same prompt, same seed

    @property
    def kind(self) -> str:
        """What the request is to the cache: an edit kind (``EDITS``), ``SEED_VARIANT`` (a prompt sent
        before, with a new seed), ``EXACT_REPEAT`` (a request sent before) or ``NEW``."""
        if self.exact:
            return EXACT_REPEAT
        return self.edit or (NEW if self.parent is None else SEED_VARIANT)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> TraceItem:
        raw = json.loads(line)
        return cls(**{**raw, "spec": ClipSpec(**raw["spec"])})


def _zipf(rng: np.random.Generator, n: int) -> int:
    weights = 1.0 / np.arange(1, n + 1) ** _ZIPF_S
    return int(rng.choice(n, p=weights / weights.sum()))


def phrase(spec: ClipSpec) -> str:
    """The similar and repeat streams' fixed phrasing: it names every attribute in one word each, so an
    edit of one attribute changes exactly that word."""
    return caption(spec, template=PHRASING)


def edit(spec: ClipSpec, rng: np.random.Generator) -> tuple[str, ClipSpec]:
    """One edit of ``spec``: an attribute drawn uniformly, set to another of its values."""
    kind = EDITS[int(rng.integers(len(EDITS)))]
    value = rng.choice([v for v in VOCABULARY[kind] if v != getattr(spec, kind)])
    return kind, replace(spec, **{kind: str(value)})


def similar_stream(n: int, rng: np.random.Generator, clusters: int) -> list[tuple]:
    pool = all_specs(held_out=False)
    bases = [pool[i] for i in rng.choice(len(pool), size=clusters, replace=False)]
    members: dict[int, list[tuple[int, ClipSpec]]] = {}  # cluster -> (index, spec)
    out = []
    for i in range(n):
        c = _zipf(rng, clusters)
        seen = members.setdefault(c, [])
        if not seen or rng.random() >= _EDIT_SHARE:
            spec, kind, parent = bases[c], None, (seen[0][0] if seen else None)
        else:
            while True:  # edits that land on a held-out pair are drawn again
                parent, source = seen[int(rng.integers(len(seen)))]
                kind, spec = edit(source, rng)
                if not spec.held_out:
                    break
        seen.append((i, spec))
        out.append((phrase(spec), spec, kind, parent))
    return out


def seed_variant_stream(n: int, rng: np.random.Generator, distinct: int) -> list[tuple]:
    pool = all_specs(held_out=False)
    specs = [pool[i] for i in rng.choice(len(pool), size=distinct, replace=False)]
    first: dict[ClipSpec, int] = {}
    out = []
    for i in range(n):
        spec = specs[_zipf(rng, distinct)]
        out.append((phrase(spec), spec, None, first.get(spec)))
        first.setdefault(spec, i)
    return out


def unrelated_stream(n: int, rng: np.random.Generator) -> list[tuple]:
    pool = all_specs(held_out=False)
    picks = rng.choice(len(pool), size=n, replace=n > len(pool))
    return [(caption(pool[i], rng, complete=True), pool[i], None, None) for i in picks]


def make_trace(stream: str, n: int, warmup: int, seed: int = 0, repeat_share: float = REPEAT_SHARE) -> list[TraceItem]:
    """``n`` requests of ``stream``, ``repeat_share`` of them exact repeats, the first ``warmup`` the cold phase."""
    rng = np.random.default_rng([seed, STREAMS.index(stream)])
    if stream == "similar":
        rows = similar_stream(n, rng, clusters=max(2, n // _REQUESTS_PER_CLUSTER))
    elif stream == "seed-variants":
        rows = seed_variant_stream(n, rng, distinct=max(2, n // 10))
    else:
        rows = unrelated_stream(n, rng)
    seeds = rng.integers(2**31, size=n)
    own = [
        TraceItem(i, stream, "cold" if i < warmup else "warm", prompt, int(seeds[i]), spec, edit=edit, parent=parent)
        for i, (prompt, spec, edit, parent) in enumerate(rows)
    ]
    return with_repeats(own, np.random.default_rng([seed, STREAMS.index(stream), 1]), repeat_share, warmup)


def with_repeats(own: list[TraceItem], rng: np.random.Generator, share: float, warmup: int) -> list[TraceItem]:
    """The stream's own requests in order, with exact repeats of earlier requests in between (each position
    after the first one a repeat with probability ``share``), cut to the stream's length."""
    out: list[TraceItem] = []
    moved: dict[int, int] = {}  # own index -> index in out
    remaining = iter(own)
    while len(out) < len(own):
        i = len(out)
        if out and rng.random() < share:
            original = out[int(rng.integers(len(out)))]
            root = original.parent if original.exact else original.index
            item = replace(original, index=i, phase="cold", edit=None, parent=root, exact=True)
        else:
            item = next(remaining)
            moved[item.index] = i
            item = replace(item, index=i, parent=None if item.parent is None else moved[item.parent])
        out.append(replace(item, phase="cold" if i < warmup else "warm"))
    return out


def prefix(trace: list[TraceItem], n: int, warmup: int) -> list[TraceItem]:
    """The first ``n`` requests of a trace, the first ``warmup`` of them its cold phase: a shorter run of
    the same stream, whose requests keep their kinds and sources (parents always come earlier)."""
    return [replace(item, phase="cold" if item.index < warmup else "warm") for item in trace[:n]]


def save_trace(path: Path, items: list[TraceItem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(item.to_json() + "\n" for item in items))


def load_trace(path: Path) -> list[TraceItem]:
    return [TraceItem.from_json(line) for line in path.read_text().splitlines() if line.strip()]


def sources(trace: list[TraceItem]) -> dict[int, int]:
    """Per request index, the request its chain of parents starts from: its source, with which it shares
    whatever a cache reuses (the paired intervals resample sources together)."""
    root: dict[int, int] = {}
    for item in trace:
        root[item.index] = item.index if item.parent is None else root[item.parent]
    return root
