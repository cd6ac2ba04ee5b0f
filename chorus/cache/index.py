"""The cache index: one row per entry in Postgres, nearest-prompt lookup with pgvector.

pgvector 0.6 (what pgserver bundles) has no iterative index scans: a filtered HNSW
query looks at the ``hnsw.ef_search`` nearest candidates of the *whole table* and
filters them, so it returns nothing when none of them is in the request's
(domain, namespace) partition. A lookup therefore chooses its path by partition size,
inside one SQL statement (one round trip, which matters on a busy host):

- small partitions (the common case: a per-domain byte budget bounds them) are
  searched exactly through the (domain, namespace) B-tree;
- large ones through HNSW; if that finds nothing, again with a larger ef_search,
  and finally exactly.

Every path runs the same WHERE clause, so another domain's or namespace's row can
never match, and None always means the partition holds no live entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from pgvector.psycopg import register_vector
from sqlalchemy import Engine, create_engine, event, insert, text, update
from sqlalchemy.exc import DBAPIError

from chorus.cache.layout import StoredEntry, delete_objects
from chorus.cache.namespace import Namespace
from chorus.db.models import CacheEntry
from chorus.storage import ObjectStore

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LookupConfig:
    # Partitions up to this size are searched exactly: ~1 us per row of backend CPU, so about
    # as much as an HNSW probe costs at this size (bench/cache_lookup.py measures both).
    exact_max_rows: int = 2000
    # HNSW candidates per try (pgvector allows up to 1000). The first try trades latency for recall:
    # at 1M synthetic entries ef 100/200/400 gave p99 6.5/11/19 ms, near-duplicate recall@1 83/88/93%.
    ef_search: tuple[int, ...] = (100, 1000)


@dataclass(frozen=True)
class EntryRef:
    """An index row as the worker needs it (no embedding, no ORM session attached)."""

    id: uuid.UUID
    domain: str
    namespace: str
    prompt: str
    token_ids: list[int]
    seed: int
    object_prefix: str
    bytes: int
    steps_stored: list[int]
    source_job_id: uuid.UUID | None


@dataclass(frozen=True)
class Match:
    entry: EntryRef
    similarity: float  # cosine similarity of the two prompt embeddings
    path: str  # how it was found ("exact", "hnsw@100", "hnsw@1000", "fallback-exact"), for metrics


_COLUMNS = ", ".join(EntryRef.__dataclass_fields__)
_LIVE = "domain = :domain AND namespace = :namespace AND expires_at > :now"
# The partition is counted up to :count_cap rows. If that count is <= :exact_max, the first
# branch runs: "+ 0" makes the ORDER BY an expression HNSW cannot serve, so the planner scans
# the partition through the B-tree and sorts exactly. Otherwise the second branch runs an
# HNSW index scan. The one-time filters on part.n mean only one branch ever executes.
_LOOKUP = text(f"""
WITH part AS (
    SELECT count(*) AS n
    FROM (SELECT 1 FROM cache_entries WHERE domain = :domain AND namespace = :namespace LIMIT :count_cap) capped
)
SELECT part.n AS partition_rows, hit.*
FROM part LEFT JOIN LATERAL (
    (SELECT {_COLUMNS}, (embedding <=> :q) + 0 AS distance FROM cache_entries
     WHERE {_LIVE} AND part.n <= :exact_max ORDER BY distance LIMIT 1)
    UNION ALL
    (SELECT {_COLUMNS}, embedding <=> :q AS distance FROM cache_entries
     WHERE {_LIVE} AND part.n > :exact_max ORDER BY embedding <=> :q LIMIT 1)
) hit ON true
""")


def index_engine(database_url: str, config: LookupConfig) -> Engine:
    """Connections for the cache: the first ef_search set at connect time, and no server-side
    prepared statements, so every lookup is planned for its own partition's size. No pre-ping
    round trip: ``lookup`` retries once on a connection that turned out dead instead."""
    engine = create_engine(
        database_url,
        connect_args={"options": f"-c hnsw.ef_search={config.ef_search[0]}", "prepare_threshold": None},
    )
    # Query vectors go out in pgvector's binary format: 1.5 kB instead of ~4.5 kB of decimal text.
    event.listen(engine, "connect", lambda dbapi_connection, _: register_vector(dbapi_connection))
    return engine


class CacheIndex:
    def __init__(self, database_url: str, config: LookupConfig | None = None, clock: Clock = utcnow):
        self.config = config or LookupConfig()
        self.engine = index_engine(database_url, self.config)
        self.clock = clock

    def admit(
        self,
        store: ObjectStore,
        stored: StoredEntry,
        *,
        namespace: Namespace,
        domain: str,
        embedding: np.ndarray,
        prompt: str,
        token_ids: list[int],
        seed: int,
        ttl_s: float,
        source_job_id: uuid.UUID | None = None,
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
            prompt=prompt,
            token_ids=list(token_ids),
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
        return EntryRef(**{name: values[name] for name in EntryRef.__dataclass_fields__})

    def lookup(self, embedding: np.ndarray, *, namespace: str, domain: str) -> Match | None:
        """The nearest live entry of the same namespace and domain, or None."""
        params = dict(q=np.asarray(embedding, dtype=np.float32), domain=domain, namespace=namespace, now=self.clock())
        try:
            return self._lookup(params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._lookup(params)  # the pool has dropped the dead connection (e.g. a Postgres restart)

    def _lookup(self, params: dict) -> Match | None:
        exact_max, (first_ef, *more_ef) = self.config.exact_max_rows, self.config.ef_search
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # a read: no BEGIN/COMMIT round trips
            row = conn.execute(_LOOKUP, dict(params, count_cap=exact_max + 1, exact_max=exact_max)).one()
            if row.partition_rows <= exact_max or row.id is not None:
                return _match(row, "exact" if row.partition_rows <= exact_max else f"hnsw@{first_ef}")
            # A large partition none of whose rows were among the HNSW candidates: widen, then scan.
            try:
                for ef in more_ef:
                    conn.exec_driver_sql(f"SET hnsw.ef_search = {int(ef)}")
                    row = conn.execute(_LOOKUP, dict(params, count_cap=1, exact_max=0)).one()  # HNSW branch
                    if row.id is not None:
                        return _match(row, f"hnsw@{ef}")
            finally:
                conn.exec_driver_sql("RESET hnsw.ef_search")  # back to the connect-time value
            return _match(conn.execute(_LOOKUP, dict(params, count_cap=0, exact_max=0)).one(), "fallback-exact")

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


def _match(row, path: str) -> Match | None:
    if row.id is None:
        return None
    fields = row._asdict()
    return Match(EntryRef(**{k: fields[k] for k in EntryRef.__dataclass_fields__}), 1.0 - fields["distance"], path)
