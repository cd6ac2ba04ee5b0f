"""The service's cache backend: pgvector index in Postgres, entry tensors in the object store.

Fetches go through a worker-local LRU on background threads, so they overlap the batch's remaining
lookups and each other; admission writes the objects before the index row; eviction keeps each domain
under its byte budget (LCBFU, expired entries first).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from concurrent.futures import Future

import numpy as np
from sqlalchemy import select

from chorus.cache.backends.base import Found
from chorus.cache.entries import write_entry
from chorus.cache.eviction import Evictor
from chorus.cache.index import CacheIndex, Match
from chorus.cache.local import EntryFetcher, LocalEntryCache
from chorus.config import Settings
from chorus.db.models import Tenant
from chorus.engine.capture import CapturedRun
from chorus.namespace import Namespace, cache_domain
from chorus.storage import ObjectNotFound, ObjectStore
from chorus.storage.links import copy_video


class PostgresBackend:
    def __init__(
        self, index: CacheIndex, store: ObjectStore, fetcher: EntryFetcher, evictor: Evictor, ttl_s: float
    ) -> None:
        self.index, self.store, self.fetcher, self.evictor, self.ttl_s = index, store, fetcher, evictor, ttl_s

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore) -> PostgresBackend:
        index = CacheIndex(settings.database_url)
        return cls(
            index,
            store,
            EntryFetcher(store, LocalEntryCache(settings.cache_local_bytes)),
            Evictor(index.engine, store, settings.cache_budget_bytes),
            settings.cache_ttl_s,
        )

    def domains(self, tenants: Collection[str]) -> dict[str, str]:
        ids = [uuid.UUID(str(t)) for t in tenants]
        with self.index.engine.connect() as conn:
            shared = dict(conn.execute(select(Tenant.id, Tenant.cache_shared).where(Tenant.id.in_(ids))).all())
        return {str(t): cache_domain(t, shared[t]) for t in ids}

    def nearest(self, embedding: np.ndarray, namespace: Namespace, domain: str, k: int) -> list[Found]:
        matches = self.index.nearest(embedding, namespace=namespace.key, domain=domain, k=k)
        return [found for m in matches if (found := self._found(m)) is not None]

    def lookup_exact(self, fingerprint: str, domain: str) -> Found | None:
        return self._found(self.index.lookup_exact(fingerprint, domain=domain))

    def copy_video(self, found: Found, key: str) -> int:
        if found.video_key is None:
            raise ObjectNotFound(f"entry {found.entry_id} kept no video")
        return copy_video(self.store, found.video_key, key)

    def lookup_source(
        self, embedding: np.ndarray, source_job_id: str, namespace: Namespace, domain: str
    ) -> Found | None:
        job = uuid.UUID(source_job_id)
        return self._found(self.index.lookup_source(embedding, job, namespace=namespace.key, domain=domain))

    def _found(self, match: Match | None) -> Found | None:
        if match is None:
            return None
        entry = match.entry
        return Found(
            entry_id=str(entry.id),
            similarity=match.similarity,
            source_job_id=str(entry.source_job_id) if entry.source_job_id else None,
            path=match.path,
            local=entry.id in self.fetcher.local,
            video_key=entry.video_key,
            prompt=entry.prompt,
            ref=entry,
        )

    def fetch(self, found: Found) -> Future[CapturedRun]:
        return self.fetcher.prefetch(found.ref)

    def record_hit(self, found: Found, steps_saved: float) -> None:
        self.index.record_hit(found.ref.id, steps_saved)

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
        stored = write_entry(self.store, domain, namespace.key, run)
        self.index.admit(
            self.store,
            stored,
            namespace=namespace,
            domain=domain,
            embedding=embedding,
            prompt=run.prompt,
            seed=run.seed,
            ttl_s=self.ttl_s,
            source_job_id=uuid.UUID(source_job_id) if source_job_id else None,
            fingerprint=fingerprint,
            video_key=video_key,
        )

    def enforce(self, domain: str) -> None:
        self.evictor.enforce(domain)
