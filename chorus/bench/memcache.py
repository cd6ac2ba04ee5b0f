"""The benchmark's source cache: in-memory nearest neighbour over prompt embeddings.

Same rules as the pgvector index (chorus.cache.index): an entry matches only within its namespace and
domain, the nearest by cosine similarity wins; a byte budget is kept by evicting the lowest-scoring
entries of chorus.cache.eviction's policy (LCBFU by default). Time is logical (one tick per admission),
so the run does not depend on wall-clock speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from chorus.cache.eviction import EntryStats, EvictionPolicy, LCBFUPolicy
from chorus.engine.capture import CapturedRun

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemoryEntry:
    id: int
    run: CapturedRun
    embedding: np.ndarray
    namespace: str
    domain: str
    created: int
    hits: int = 0
    steps_saved: float = 0.0

    @property
    def nbytes(self) -> int:
        return self.run.nbytes


class MemoryCache:
    def __init__(self, budget_bytes: int | None = None, policy: EvictionPolicy | None = None) -> None:
        self.budget_bytes, self.policy = budget_bytes, policy or LCBFUPolicy()
        self.entries: dict[int, MemoryEntry] = {}
        self._tick = 0
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())

    def lookup(self, embedding: np.ndarray, namespace: str, domain: str) -> tuple[MemoryEntry, float] | None:
        live = [e for e in self.entries.values() if e.namespace == namespace and e.domain == domain]
        if not live:
            return None
        sims = np.stack([e.embedding for e in live]) @ np.asarray(embedding, dtype=np.float32)
        best = int(np.argmax(sims))
        return live[best], float(sims[best])

    def record_hit(self, entry: MemoryEntry, steps_saved: float) -> None:
        entry.hits += 1
        entry.steps_saved += steps_saved

    def admit(self, run: CapturedRun, embedding: np.ndarray, namespace: str, domain: str) -> None:
        self._tick += 1
        if self.budget_bytes is not None and run.nbytes > self.budget_bytes:
            return
        entry = MemoryEntry(self._tick, run, np.asarray(embedding, dtype=np.float32), namespace, domain, self._tick)
        self.entries[entry.id] = entry
        self._enforce()

    def _enforce(self) -> None:
        if self.budget_bytes is None:
            return
        now = _EPOCH + timedelta(seconds=self._tick)
        while self.nbytes > self.budget_bytes:
            worst = min(self.entries.values(), key=lambda e: self.policy.score(self._stats(e), now))
            del self.entries[worst.id]
            self.evictions += 1

    @staticmethod
    def _stats(entry: MemoryEntry) -> EntryStats:
        created = _EPOCH + timedelta(seconds=entry.created)
        return EntryStats(entry.id, entry.nbytes, entry.hits, entry.steps_saved, created, None)
