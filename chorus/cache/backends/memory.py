"""An in-process cache backend: ``chorus bench``, notebooks and tests, no services.

Same rules as the Postgres backend: an entry matches only within its namespace and domain, the nearest
by cosine similarity wins; a byte budget is kept by evicting the lowest-scoring entries of
``chorus.cache.eviction``'s policy (LCBFU by default). Time is logical (one tick per admission), so a run
does not depend on wall-clock speed. Tenants are their own domains unless listed in ``shared_tenants``.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from chorus.cache.backends.base import Found
from chorus.cache.eviction import EntryStats, EvictionPolicy, LCBFUPolicy
from chorus.engine.capture import CapturedRun
from chorus.namespace import Namespace, cache_domain
from chorus.storage import ObjectNotFound

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemoryEntry:
    id: int
    run: CapturedRun
    embedding: np.ndarray
    namespace: str
    domain: str
    created: int
    source_job_id: str | None = None
    fingerprint: str | None = None
    video_key: str | None = None
    hits: int = 0
    steps_saved: float = 0.0

    @property
    def nbytes(self) -> int:
        return self.run.nbytes


class MemoryBackend:
    def __init__(
        self,
        budget_bytes: int | None = None,
        policy: EvictionPolicy | None = None,
        shared_tenants: Collection[str] = (),
    ) -> None:
        self.budget_bytes, self.policy = budget_bytes, policy or LCBFUPolicy()
        self.shared_tenants = frozenset(shared_tenants)
        self.entries: dict[int, MemoryEntry] = {}
        self.videos: dict[str, object] = {}  # delivered videos by key, as the caller put them (its "store")
        self._tick = 0
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())

    def domains(self, tenants: Collection[str]) -> dict[str, str]:
        return {t: cache_domain(t, t in self.shared_tenants) for t in tenants}

    def nearest(self, embedding: np.ndarray, namespace: Namespace, domain: str, k: int) -> list[Found]:
        live = [e for e in self.entries.values() if (e.namespace, e.domain) == (namespace.key, domain)]
        return self._nearest(embedding, live, k)

    def lookup_exact(self, fingerprint: str, domain: str) -> Found | None:
        same = [e for e in self.entries.values() if (e.fingerprint, e.domain) == (fingerprint, domain)]
        if not same:
            return None
        newest = max(same, key=lambda e: e.created)
        return Found(
            entry_id=str(newest.id),
            similarity=1.0,
            source_job_id=newest.source_job_id,
            path="key",
            local=True,
            video_key=newest.video_key,
            prompt=newest.run.prompt,
            ref=newest,
        )

    def copy_video(self, found: Found, key: str) -> int:
        if found.video_key not in self.videos:
            raise ObjectNotFound(f"no video {found.video_key!r}")
        self.videos[key] = self.videos[found.video_key]
        return 0  # nothing is encoded in memory: no bytes to count

    def lookup_source(
        self, embedding: np.ndarray, source_job_id: str, namespace: Namespace, domain: str
    ) -> Found | None:
        partition = (namespace.key, domain, source_job_id)
        live = [e for e in self.entries.values() if (e.namespace, e.domain, e.source_job_id) == partition]
        return next(iter(self._nearest(embedding, live, 1)), None)

    @staticmethod
    def _nearest(embedding: np.ndarray, live: list[MemoryEntry], k: int) -> list[Found]:
        if not live:
            return []
        sims = np.stack([e.embedding for e in live]) @ np.asarray(embedding, dtype=np.float32)
        order = np.argsort(-sims, kind="stable")[:k]  # ties: the earlier entry, as argmax did
        return [
            Found(
                entry_id=str(live[i].id),
                similarity=float(sims[i]),
                source_job_id=live[i].source_job_id,
                path="memory",
                local=True,
                prompt=live[i].run.prompt,
                ref=live[i],
            )
            for i in order
        ]

    def fetch(self, found: Found) -> Future[CapturedRun]:
        done: Future[CapturedRun] = Future()
        done.set_result(found.ref.run)
        return done

    def record_hit(self, found: Found, steps_saved: float) -> None:
        found.ref.hits += 1
        found.ref.steps_saved += steps_saved

    def admit(
        self,
        run: CapturedRun,
        embedding: np.ndarray,
        namespace: Namespace,
        domain: str,
        source_job_id: str | None,
        fingerprint: str | None = None,
        video_key: str | None = None,
    ) -> None:
        self._tick += 1
        if self.budget_bytes is not None and run.nbytes > self.budget_bytes:
            return
        vector = np.asarray(embedding, dtype=np.float32)
        entry = MemoryEntry(
            self._tick, run, vector, namespace.key, domain, self._tick, source_job_id, fingerprint, video_key
        )
        self.entries[entry.id] = entry

    def enforce(self, domain: str) -> None:
        if self.budget_bytes is None:
            return
        now = _EPOCH + timedelta(seconds=self._tick)
        while (in_domain := [e for e in self.entries.values() if e.domain == domain]) and sum(
            e.nbytes for e in in_domain
        ) > self.budget_bytes:
            worst = min(in_domain, key=lambda e: self.policy.score(self._stats(e), now))
            del self.entries[worst.id]
            self.evictions += 1

    @staticmethod
    def _stats(entry: MemoryEntry) -> EntryStats:
        created = _EPOCH + timedelta(seconds=entry.created)
        return EntryStats(entry.id, entry.nbytes, entry.hits, entry.steps_saved, created, None)
