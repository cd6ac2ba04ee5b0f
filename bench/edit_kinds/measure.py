"""Accuracy of the edit-kind classifier on the labelled public pairs (pairs.jsonl).

    python bench/edit_kinds/measure.py --split test   # the held-out split; dev is the one to tune on

Prints exact-set accuracy (the predicted set of kinds equals the label) overall and per kind (over the
pairs whose label holds that kind), and per-kind precision and recall over all pairs; ``--errors``
lists the misses.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from chorus.reuse.edit_kind import EditKind, EditKindClassifier

PAIRS = Path(__file__).resolve().parent / "pairs.jsonl"


@dataclass(frozen=True)
class Scores:
    pairs: int
    exact: float  # share of pairs whose predicted kinds equal the label
    per_kind: dict[str, dict[str, float]]  # kind -> support, exact (on pairs with that kind), precision, recall


def load(split: str) -> list[dict]:
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines() if line]
    return [r for r in rows if split == "all" or r["split"] == split]


def score(rows: list[dict], predicted: list[frozenset[EditKind]]) -> Scores:
    truth = [frozenset(EditKind(k) for k in r["kinds"]) for r in rows]
    per_kind = {}
    for kind in EditKind:
        with_kind = [i for i, t in enumerate(truth) if kind in t]
        tp = sum(kind in predicted[i] for i in with_kind)
        claimed = sum(kind in p for p in predicted)
        per_kind[kind.value] = {
            "support": len(with_kind),
            "exact": sum(predicted[i] == truth[i] for i in with_kind) / max(1, len(with_kind)),
            "precision": tp / claimed if claimed else 1.0,
            "recall": tp / max(1, len(with_kind)),
        }
    exact = sum(p == t for p, t in zip(predicted, truth)) / max(1, len(rows))
    return Scores(len(rows), exact, per_kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test", "all"), default="test")
    parser.add_argument("--errors", action="store_true", help="list the pairs classified wrongly")
    args = parser.parse_args()
    from chorus.cache.embedder import MiniLMEmbedder

    rows = load(args.split)
    classifier = EditKindClassifier(MiniLMEmbedder())
    classifier.classify("a platypus", "a wombat")  # loads the prototypes and warms MiniLM, outside the timing
    start = time.perf_counter()
    predicted = [classifier.classify(r["source"], r["target"]) for r in rows]
    per_pair_ms = (time.perf_counter() - start) / max(1, len(rows)) * 1000
    s = score(rows, predicted)
    print(f"split={args.split} pairs={s.pairs} exact-set accuracy={s.exact:.1%} ({per_pair_ms:.1f} ms/pair)")
    for kind, f in s.per_kind.items():
        figures = f"exact={f['exact']:.1%} precision={f['precision']:.1%} recall={f['recall']:.1%}"
        print(f"  {kind:<10} n={f['support']:<4} {figures}")
    if args.errors:
        for r, p in zip(rows, predicted):
            if p != frozenset(EditKind(k) for k in r["kinds"]):
                print(f"  want {r['kinds']} got {sorted(p)}: {r['source']!r} -> {r['target']!r}")


if __name__ == "__main__":
    main()
