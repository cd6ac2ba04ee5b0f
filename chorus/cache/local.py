"""The worker-local side of the cache: an LRU of fetched entries and background fetches.

Hot entries are kept in memory so consecutive hits on one source do not refetch its
tensors, and a fetch can start as soon as the lookup matched, overlapping with the
request's prompt encoding.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

from cachetools import LRUCache

from chorus.cache.entries import read_entry
from chorus.cache.index import EntryRef
from chorus.engine.capture import CapturedRun
from chorus.storage import ObjectStore


class LocalEntryCache:
    """Thread-safe LRU of loaded entries, bounded by their tensor bytes.

    One loaded entry serves every request that reuses it: callers treat it as read-only.
    """

    def __init__(self, max_bytes: int):
        self._lru: LRUCache[uuid.UUID, CapturedRun] = LRUCache(maxsize=max_bytes, getsizeof=lambda run: run.nbytes)
        self._lock = threading.Lock()

    def get(self, entry_id: uuid.UUID) -> CapturedRun | None:
        with self._lock:
            return self._lru.get(entry_id)

    def put(self, entry_id: uuid.UUID, run: CapturedRun) -> None:
        with self._lock:
            if run.nbytes <= self._lru.maxsize:  # an entry larger than the whole bound is not kept
                self._lru[entry_id] = run

    def __contains__(self, entry_id: uuid.UUID) -> bool:
        with self._lock:
            return entry_id in self._lru

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize)


class EntryFetcher:
    """Loads entries through the local LRU; ``prefetch`` does it on a background thread.

    Concurrent requests for the same entry share one fetch. A failed fetch raises
    EntryUnavailable from ``Future.result()`` and is not remembered, so a later
    request tries again.
    """

    def __init__(self, store: ObjectStore, local: LocalEntryCache, threads: int = 2):
        self.store = store
        self.local = local
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cache-fetch")
        self._inflight: dict[uuid.UUID, Future[CapturedRun]] = {}
        self._lock = threading.Lock()

    def fetch(self, entry: EntryRef) -> CapturedRun:
        return self.prefetch(entry).result()

    def prefetch(self, entry: EntryRef) -> Future[CapturedRun]:
        with self._lock:
            cached = self.local.get(entry.id)
            if cached is not None:
                done: Future[CapturedRun] = Future()
                done.set_result(cached)
                return done
            future = self._inflight.get(entry.id)
            if future is None:
                future = self._pool.submit(self._load, entry)
                self._inflight[entry.id] = future
            return future

    def _load(self, entry: EntryRef) -> CapturedRun:
        try:
            run = read_entry(self.store, entry.object_prefix)
            self.local.put(entry.id, run)
            return run
        finally:
            with self._lock:
                self._inflight.pop(entry.id, None)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
