"""The cache index: one row per entry in Postgres, nearest-prompt lookup with pgvector.

pgvector 0.6 (what pgserver bundles) has no iterative index scans: a filtered HNSW
query looks at the ``hnsw.ef_search`` nearest candidates of the *whole table* and
filters them, so it returns nothing when none of them is in the request's
(domain, namespace) partition. A lookup therefore chooses its path by partition size:

- small partitions (the common case: a per-domain byte budget bounds them) are
  searched exactly through the (domain, namespace) B-tree;
- large ones through HNSW; if that finds nothing, again with a larger ef_search,
  and finally exactly.

The partition's size is counted (capped) at most once per ``size_ttl_s`` and kept in
the index: it only picks the path, so a stale size costs time, never a result. Every
path runs the same WHERE clause, so another domain's or namespace's row can never
match, and None always means the partition holds no live entry.

A lookup is one round trip (two when the partition is counted) on a pooled psycopg
connection in autocommit, without SQLAlchemy's per-statement work and without BEGIN or
COMMIT. The HNSW statement is prepared once per connection; Postgres still plans it per
call (its generic plan is estimated dearer), as it does the exact one, for the partition's
size. bench/cache_lookup.py measures all of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy import Engine, create_engine, event, insert, update

from chorus.cache.layout import StoredEntry, delete_objects
from chorus.db.models import CacheEntry
from chorus.namespace import Namespace
from chorus.storage import ObjectStore

T = TypeVar("T")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LookupConfig:
    # Partitions up to this size are searched exactly: ~1-2 us per row of backend CPU, so about
    # as much as an HNSW probe costs at this size (bench/cache_lookup.py measures both).
    exact_max_rows: int = 2000
    # HNSW candidates per try (pgvector allows up to 1000). The first try trades latency for recall:
    # at 1M synthetic entries ef 100/200/400 gave p99 6.5/11/19 ms, near-duplicate recall@1 83/88/93%.
    # The widening steps matter for partitions that are a small share of the table, where new prompts
    # often have none of their rows among the first candidates: at 1M entries ef 400 costs ~17 ms of
    # CPU, ef 1000 ~40 ms, an exact scan of a 5-10k-row partition 30-80 ms (its rows lie on as many pages).
    ef_search: tuple[int, ...] = (100, 400, 1000)
    # How long a partition's counted size is used to choose the path before it is counted again.
    size_ttl_s: float = 60.0


@dataclass(frozen=True)
class EntryRef:
    """An index row as the worker needs it (no embedding, no ORM session attached)."""

    id: uuid.UUID
    domain: str
    namespace: str
    prompt: str
    seed: int
    object_prefix: str
    bytes: int
    source_job_id: uuid.UUID | None
    video_key: str | None = None


@dataclass(frozen=True)
class Match:
    entry: EntryRef
    similarity: float  # cosine similarity of the two prompt embeddings
    path: str  # how it was found ("exact", "hnsw@100", "hnsw@1000", "fallback-exact"), for metrics


_COLUMNS = ", ".join(EntryRef.__dataclass_fields__)
_LIVE = "domain = %(domain)s AND namespace = %(namespace)s AND expires_at > %(now)s"
# "+ 0" makes the ORDER BY an expression HNSW cannot serve: the planner scans the partition
# through the (domain, namespace) B-tree and sorts exactly.
_EXACT = (
    f"SELECT {_COLUMNS}, (embedding <=> %(q)s) + 0 AS distance FROM cache_entries WHERE {_LIVE}"
    " ORDER BY distance LIMIT %(k)s"
)
_HNSW = (
    f"SELECT {_COLUMNS}, embedding <=> %(q)s AS distance FROM cache_entries WHERE {_LIVE}"
    " ORDER BY embedding <=> %(q)s LIMIT %(k)s"
)
# A remix: the named job's entry in the partition, however far its prompt is from the query.
_BY_JOB = (
    f"SELECT {_COLUMNS}, embedding <=> %(q)s AS distance FROM cache_entries WHERE {_LIVE}"
    " AND source_job_id = %(job)s ORDER BY created_at DESC LIMIT 1"
)
# An exact repeat: the newest live entry of the domain with the request's fingerprint, through its B-tree.
_BY_FINGERPRINT = (
    f"SELECT {_COLUMNS}, 0.0::float8 AS distance FROM cache_entries WHERE domain = %(domain)s"
    " AND fingerprint = %(fingerprint)s AND expires_at > %(now)s ORDER BY created_at DESC LIMIT 1"
)
# The partition's size, counted up to a cap (an index-only scan of at most cap B-tree entries).
_SIZE = (
    "SELECT count(*) FROM (SELECT 1 FROM cache_entries WHERE domain = %(domain)s AND namespace = %(namespace)s"
    " LIMIT %(cap)s) capped"
)


def index_engine(database_url: str, config: LookupConfig) -> Engine:
    """Connections for the cache: the first ef_search set at connect time. No pre-ping round
    trip: ``lookup`` retries once on a connection that turned out dead instead."""
    engine = create_engine(database_url, connect_args={"options": f"-c hnsw.ef_search={config.ef_search[0]}"})
    # Query vectors go out in pgvector's binary format: 1.5 kB instead of ~4.5 kB of decimal text.
    event.listen(engine, "connect", lambda dbapi_connection, _: register_vector(dbapi_connection))
    return engine


class CacheIndex:
    def __init__(self, database_url: str, config: LookupConfig | None = None, clock: Clock = utcnow):
        self.config = config or LookupConfig()
        self.engine = index_engine(database_url, self.config)
        self.clock = clock
        # (domain, namespace) -> (size counted up to exact_max_rows + 1, when it was counted)
        self._sizes: dict[tuple[str, str], tuple[int, datetime]] = {}

    def admit(
        self,
        store: ObjectStore,
        stored: StoredEntry,
        *,
        namespace: Namespace,
        domain: str,
        embedding: np.ndarray,
        prompt: str,
        seed: int,
        ttl_s: float,
        source_job_id: uuid.UUID | None = None,
        fingerprint: str | None = None,
        video_key: str | None = None,
    ) -> EntryRef:
        """Insert the row of an entry whose objects are already written.

        Rows are only ever inserted after their objects exist, so a lookup never sees an
        entry without tensors; if the insert fails, the objects are deleted again.
        """
        now = self.clock()
        values = dict(
            id=stored.id,
            domain=domain,
            namespace=namespace.key,
            namespace_info=namespace.info(),
            source_job_id=source_job_id,
            fingerprint=fingerprint,
            video_key=video_key,
            prompt=prompt,
            embedding=np.asarray(embedding, dtype=np.float32),
            seed=seed,
            object_prefix=stored.prefix,
            bytes=stored.nbytes,
            steps_stored=list(stored.steps_stored),
            hits=0,
            steps_saved_total=0.0,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(CacheEntry).values(**values))
        except Exception:
            delete_objects(store, stored.prefix)
            raise
        self._sizes.pop((domain, namespace.key), None)  # may have grown past exact_max_rows
        return EntryRef(**{name: values[name] for name in EntryRef.__dataclass_fields__})

    def lookup(self, embedding: np.ndarray, *, namespace: str, domain: str) -> Match | None:
        """The nearest live entry of the same namespace and domain, or None."""
        return next(iter(self.nearest(embedding, namespace=namespace, domain=domain, k=1)), None)

    def nearest(self, embedding: np.ndarray, *, namespace: str, domain: str, k: int) -> list[Match]:
        """The ``k`` nearest live entries of the same namespace and domain, nearest first (fewer where the
        partition holds fewer)."""
        q = np.asarray(embedding, dtype=np.float32)
        params = dict(q=q, domain=domain, namespace=namespace, now=self.clock(), k=k)
        return self._read(lambda conn: self._search(conn, params))

    def lookup_exact(self, fingerprint: str, *, domain: str) -> Match | None:
        """The newest live entry of the domain with this request fingerprint, or None."""
        params = dict(domain=domain, fingerprint=fingerprint, now=self.clock())
        return self._read(lambda conn: _match(conn.execute(_BY_FINGERPRINT, params, prepare=False).fetchone(), "key"))

    def lookup_source(
        self, embedding: np.ndarray, source_job_id: uuid.UUID, *, namespace: str, domain: str
    ) -> Match | None:
        """The live entry the job ``source_job_id`` left in the same namespace and domain, or None (never
        run there, evicted, expired); its similarity to ``embedding`` is reported, not required."""
        params = dict(
            q=np.asarray(embedding, dtype=np.float32), domain=domain, namespace=namespace, now=self.clock(),
            job=source_job_id,
        )  # fmt: skip
        return self._read(lambda conn: _match(conn.execute(_BY_JOB, params, prepare=False).fetchone(), "job"))

    def _read(self, query: Callable[[psycopg.Connection], T]) -> T:
        """Run a read on a pooled connection in autocommit, once more on a fresh one if it was dead."""
        for attempt in range(2):
            pooled = self.engine.raw_connection()
            conn: psycopg.Connection = pooled.driver_connection
            try:
                conn.autocommit = True  # a read: no BEGIN/COMMIT round trips
                return query(conn)
            except psycopg.OperationalError:
                if not conn.broken or attempt:
                    raise
                pooled.invalidate()  # a dead connection (e.g. a Postgres restart): once more on a new one
            finally:
                if not conn.broken:
                    conn.autocommit = False  # as SQLAlchemy expects its pooled connections
                pooled.close()
        raise AssertionError("unreachable")

    def _search(self, conn: psycopg.Connection, params: dict) -> list[Match]:
        (first_ef, *more_ef), size = self.config.ef_search, self._partition_size(conn, params)
        if size <= self.config.exact_max_rows:
            return _matches(conn.execute(_EXACT, params, prepare=False).fetchall(), "exact")
        rows = conn.execute(_HNSW, params, prepare=True).fetchall()
        if rows:
            return _matches(rows, f"hnsw@{first_ef}")
        # A large partition none of whose rows were among the HNSW candidates: widen, then scan.
        if more_ef:
            try:
                for ef in more_ef:
                    conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                    rows = conn.execute(_HNSW, params, prepare=True).fetchall()
                    if rows:
                        return _matches(rows, f"hnsw@{ef}")
            finally:
                conn.execute("RESET hnsw.ef_search")  # back to the connect-time value
        rows = conn.execute(_EXACT, params, prepare=False).fetchall()
        if not rows:
            self._sizes.pop((params["domain"], params["namespace"]), None)  # count again next time
        return _matches(rows, "fallback-exact")

    def _partition_size(self, conn: psycopg.Connection, params: dict) -> int:
        key, now = (params["domain"], params["namespace"]), params["now"]
        cached = self._sizes.get(key)
        if cached is not None and timedelta(0) <= now - cached[1] <= timedelta(seconds=self.config.size_ttl_s):
            return cached[0]
        cap = self.config.exact_max_rows + 1
        (size,) = conn.execute(_SIZE, dict(params, cap=cap), prepare=False).fetchone()
        self._sizes[key] = (size, now)
        return size

    def record_hit(self, entry_id: uuid.UUID, steps_saved: float) -> bool:
        """Count a reuse of the entry (for eviction); False if it was evicted meanwhile."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(CacheEntry)
                .where(CacheEntry.id == entry_id)
                .values(
                    hits=CacheEntry.hits + 1,
                    steps_saved_total=CacheEntry.steps_saved_total + steps_saved,
                    last_hit_at=self.clock(),
                )
            )
            return result.rowcount == 1


def _match(row: tuple | None, path: str) -> Match | None:
    if row is None:
        return None
    *fields, distance = row
    return Match(EntryRef(*fields), 1.0 - distance, path)


def _matches(rows: list[tuple], path: str) -> list[Match]:
    return [m for row in rows if (m := _match(row, path)) is not None]
