"""The cache index, eviction and fetch on real Postgres + pgvector (pgserver) and S3 over HTTP (moto).

Every test uses its own namespace (a unique model id), so rows of other tests or
sessions in the shared database can never match, and it deletes its rows and
objects afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, delete, func, select

from chorus.cache.embedder import MiniLMEmbedder
from chorus.cache.entries import write_entry
from chorus.cache.eviction import Evictor, eviction_lock_key
from chorus.cache.index import CacheIndex, EntryRef, LookupConfig, Match, utcnow
from chorus.cache.layout import EntryUnavailable, delete_objects, object_key
from chorus.cache.local import EntryFetcher, LocalEntryCache
from chorus.db.models import CacheEntry
from chorus.namespace import Namespace, cache_domain
from chorus.storage import open_store
from chorus.storage.s3 import S3Store
from tests.fixtures.cache_runs import make_run
from tests.fixtures.services import S3_BUCKET

DIM = 384
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    """The time the index and evictor see; tests move it instead of sleeping."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def engine(database_url) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def store(s3_endpoint) -> S3Store:
    return S3Store(S3_BUCKET, prefix=f"cache-{secrets.token_hex(4)}", endpoint_url=s3_endpoint)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(database_url, clock) -> Iterator[CacheIndex]:
    index = CacheIndex(database_url, clock=clock)
    yield index
    index.engine.dispose()


@pytest.fixture
def ns() -> Namespace:
    return Namespace(f"test-{secrets.token_hex(4)}", "r1", "flow_match_euler(shift=2.0)", 4, 32, 32, 8, 3.0, "e")


@pytest.fixture
def admit(index, store, ns, engine) -> Iterator[Callable[..., EntryRef]]:
    """``admit(domain, embedding, ...)``: write a real entry to S3 and index it; all removed afterwards."""
    made: list[EntryRef] = []

    def admit_one(
        domain: str,
        embedding: np.ndarray,
        *,
        namespace: Namespace | None = None,
        ttl_s: float = 86400,
        seed: int = 0,
        fingerprint: str | None = None,
    ) -> EntryRef:
        namespace = namespace or ns
        stored = write_entry(store, domain, namespace.key, make_run(seed=seed))
        ref = index.admit(
            store, stored, namespace=namespace, domain=domain, embedding=embedding, prompt=f"p{seed}",
            seed=seed, ttl_s=ttl_s, fingerprint=fingerprint, video_key=fingerprint and f"videos/{fingerprint}.mp4",
        )  # fmt: skip
        made.append(ref)
        return ref

    yield admit_one
    with engine.begin() as conn:
        conn.execute(delete(CacheEntry).where(CacheEntry.id.in_([r.id for r in made])))
    for ref in made:
        delete_objects(store, ref.object_prefix)


def row_ids(engine, domain: str) -> set[uuid.UUID]:
    with engine.connect() as conn:
        return set(conn.scalars(select(CacheEntry.id).where(CacheEntry.domain == domain)))


def test_lookup_returns_the_nearest_entry_of_the_same_namespace_and_domain(index, admit, ns):
    rng = np.random.default_rng(0)
    a, b = unit(rng.standard_normal((2, DIM)))
    ref_a, ref_b = admit("tenant-1", a, seed=1), admit("tenant-1", b, seed=2)
    match = index.lookup(unit(a + 0.1 * unit(rng.standard_normal(DIM))), namespace=ns.key, domain="tenant-1")
    assert match is not None and match.entry == ref_a and match.path == "exact"
    assert 0.99 < match.similarity < 1.0
    assert index.lookup(b, namespace=ns.key, domain="tenant-1").entry == ref_b
    assert index.lookup(b, namespace=ns.key, domain="tenant-2") is None


def test_an_exact_repeat_is_found_by_its_fingerprint_among_same_prompt_entries_of_other_seeds(index, admit, clock):
    prompt = unit(np.random.default_rng(5).standard_normal(DIM))
    for seed in range(6):  # one prompt embedding, many seeds: all tie for the nearest-prompt search
        admit("tenant-1", prompt, seed=seed, fingerprint=f"fp-{seed}")
        clock.advance(1)
    match = index.lookup_exact("fp-3", domain="tenant-1")
    assert match.entry.seed == 3 and match.entry.video_key == "videos/fp-3.mp4" and match.path == "key"
    assert index.lookup_exact("fp-3", domain="tenant-2") is None  # another tenant's domain never matches
    assert index.lookup_exact("fp-other", domain="tenant-1") is None
    clock.advance(2 * 86400)
    assert index.lookup_exact("fp-3", domain="tenant-1") is None  # expired


def test_entries_of_other_namespaces_never_match(index, admit, ns):
    q = unit(np.random.default_rng(1).standard_normal(DIM))
    other = Namespace(ns.model_id, ns.revision, ns.scheduler, 8, 32, 32, 8, 3.0, "e")  # only the steps differ
    admit("tenant-1", q, namespace=other)
    assert index.lookup(q, namespace=ns.key, domain="tenant-1") is None
    far = admit("tenant-1", -q)
    assert index.lookup(q, namespace=ns.key, domain="tenant-1").entry == far  # the far one, never the identical


def test_a_near_identical_prompt_in_another_tenants_domain_never_matches(index, admit, ns):
    embed = MiniLMEmbedder().embed
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    e_a, e_query, e_b = embed(["a red circle moves left", "a red circle moves left.", "a blue square spins"])
    assert float(e_a @ e_query) > 0.95
    admit(tenant_a, e_a)
    assert index.lookup(e_query, namespace=ns.key, domain=tenant_b) is None
    own = admit(tenant_b, e_b)
    match = index.lookup(e_query, namespace=ns.key, domain=tenant_b)
    assert match.entry == own and match.similarity < float(e_a @ e_query)


def test_tenants_that_opt_in_share_one_pool_and_private_ones_see_none_of_it(index, admit, ns):
    q = unit(np.random.default_rng(2).standard_normal(DIM))
    sharing_a, sharing_b, private = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    admit(str(sharing_a), q)  # made before tenant A opted in: stays private to A
    assert index.lookup(q, namespace=ns.key, domain=cache_domain(sharing_b, cache_shared=True)) is None
    shared = admit(cache_domain(sharing_a, cache_shared=True), q)
    assert index.lookup(q, namespace=ns.key, domain=cache_domain(sharing_b, cache_shared=True)).entry == shared
    assert index.lookup(q, namespace=ns.key, domain=cache_domain(private, cache_shared=False)) is None


def insert_rows(engine: Engine, domain: str, namespace: str, vectors: np.ndarray) -> list[uuid.UUID]:
    """Index-only rows (no tensors), as another worker or a bulk load would add them: not through ``index``."""
    ids = [uuid.uuid4() for _ in vectors]
    with engine.begin() as conn:
        conn.execute(
            CacheEntry.__table__.insert(),
            [
                dict(id=i, domain=domain, namespace=namespace, namespace_info={}, prompt="",
                     embedding=v, seed=0, object_prefix="cache/none", bytes=1, steps_stored=[1], hits=0,
                     steps_saved_total=0.0, created_at=T0, expires_at=T0 + timedelta(hours=1))
                for i, v in zip(ids, vectors)
            ],
        )  # fmt: skip
    return ids


def test_large_partitions_use_hnsw_and_never_come_back_empty_while_entries_exist(database_url, engine, clock, ns):
    """pgvector 0.6 filters HNSW candidates after the scan; the lookup must fall back, not return None."""
    rng = np.random.default_rng(3)
    mine_dir, theirs_dir = unit(rng.standard_normal((2, DIM)))
    clusters = {
        "mine": unit(mine_dir + 0.6 * unit(rng.standard_normal((300, DIM)))),
        "theirs": unit(theirs_dir + 0.3 * unit(rng.standard_normal((300, DIM)))),
    }
    for domain, vectors in clusters.items():
        insert_rows(engine, domain, ns.key, vectors)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE cache_entries")  # so the planner knows the partitions are large
    index = CacheIndex(database_url, LookupConfig(exact_max_rows=10, ef_search=(10, 20)), clock=clock)
    try:
        mine = clusters["mine"]
        near_mine = unit(mine[0] + 0.05 * unit(rng.standard_normal(DIM)))
        match = index.lookup(near_mine, namespace=ns.key, domain="mine")
        assert match.path == "hnsw@10" and match.similarity == pytest.approx(float((mine @ near_mine).max()), abs=1e-5)
        # Near the other domain's cluster: every HNSW candidate is theirs, the filter drops them all.
        near_theirs = unit(clusters["theirs"][0] + 0.05 * unit(rng.standard_normal(DIM)))
        match = index.lookup(near_theirs, namespace=ns.key, domain="mine")
        assert match.path == "fallback-exact" and match.entry.domain == "mine"
        assert match.similarity == pytest.approx(float((mine @ near_theirs).max()), abs=1e-5)
        with index.engine.connect() as conn:  # the widened ef_search did not stay on the pooled connection
            assert conn.exec_driver_sql("SHOW hnsw.ef_search").scalar() == "10"
    finally:
        index.engine.dispose()
        with engine.begin() as conn:
            conn.execute(delete(CacheEntry).where(CacheEntry.namespace == ns.key))


def test_nearest_returns_the_k_nearest_entries_nearest_first_on_both_paths(database_url, engine, clock, ns):
    """The lookup the session weighs: up to k live entries of the partition in order of similarity, by the
    exact scan of a small partition and through HNSW in a large one."""
    rng = np.random.default_rng(11)
    center = unit(rng.standard_normal(DIM))
    rows = unit(center + np.linspace(0.1, 1.0, 40)[:, None] * unit(rng.standard_normal((40, DIM))))
    try:
        insert_rows(engine, "topk", ns.key, rows)
        expected = sorted((rows @ center).tolist(), reverse=True)[:4]
        for exact_max_rows in (1000, 10):  # exact scan, then HNSW
            index = CacheIndex(database_url, LookupConfig(exact_max_rows=exact_max_rows), clock=clock)
            try:
                found = index.nearest(center, namespace=ns.key, domain="topk", k=4)
                similarities = [m.similarity for m in found]
                assert len(found) == 4 and similarities == sorted(similarities, reverse=True)
                if exact_max_rows == 1000:  # exact: these four; HNSW is approximate, its nearest first
                    assert found[0].path == "exact" and similarities == pytest.approx(expected, abs=1e-5)
                else:
                    assert found[0].path == "hnsw@100" and similarities[0] == pytest.approx(expected[0], abs=1e-5)
                assert index.lookup(center, namespace=ns.key, domain="topk").entry == found[0].entry
                assert index.nearest(center, namespace=ns.key, domain="none", k=4) == []
            finally:
                index.engine.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(delete(CacheEntry).where(CacheEntry.domain == "topk"))


def test_a_stale_partition_size_changes_the_path_never_the_result(database_url, engine, clock, ns):
    """The index counts a partition once per size_ttl_s to choose its path; rows that other writers
    add or evict meanwhile are found, or not, exactly as with a fresh count."""
    rng = np.random.default_rng(8)
    center = unit(rng.standard_normal(DIM))
    cluster = unit(center + 0.6 * unit(rng.standard_normal((300, DIM))))
    index = CacheIndex(database_url, LookupConfig(exact_max_rows=10, ef_search=(10, 20), size_ttl_s=60), clock=clock)

    def lookup(q: np.ndarray) -> Match | None:
        return index.lookup(q, namespace=ns.key, domain="grows")

    try:
        (first,) = insert_rows(engine, "grows", ns.key, center[None])
        assert lookup(center).path == "exact"  # counted: 1 row
        insert_rows(engine, "grows", ns.key, cluster)  # by another worker
        q = unit(cluster[5] + 0.05 * unit(rng.standard_normal(DIM)))
        best = float((np.vstack([center, cluster]) @ q).max())
        match = lookup(q)  # still counted as 1 row: an exact scan, of all 301 rows
        assert match.path == "exact" and match.similarity == pytest.approx(best, abs=1e-5)
        clock.advance(61)
        match = lookup(q)  # counted again: HNSW
        assert match.path == "hnsw@10" and match.similarity == pytest.approx(best, abs=1e-5)
        with engine.begin() as conn:  # another process evicts all but one row
            conn.execute(delete(CacheEntry).where(CacheEntry.namespace == ns.key, CacheEntry.id != first))
        assert lookup(q).entry.id == first  # counted as 301 rows: HNSW, widened, scanned; never None
        with engine.begin() as conn:
            conn.execute(delete(CacheEntry).where(CacheEntry.namespace == ns.key))
        assert lookup(q) is None  # the partition is empty: the count is dropped ...
        (again,) = insert_rows(engine, "grows", ns.key, center[None])
        match = lookup(q)  # ... and taken again at once
        assert match.entry.id == again and match.path == "exact"
        with index.engine.connect() as conn:  # lookups leave pooled connections as SQLAlchemy expects them
            assert conn.connection.driver_connection.autocommit is False
    finally:
        index.engine.dispose()
        with engine.begin() as conn:
            conn.execute(delete(CacheEntry).where(CacheEntry.namespace == ns.key))


def test_lookup_survives_a_dropped_database_connection(index, admit, engine, ns):
    q = unit(np.random.default_rng(7).standard_normal(DIM))
    ref = admit("tenant-1", q)
    with index.engine.connect() as conn:  # the one connection in the index's pool
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.begin() as conn:  # what a Postgres restart or failover does to it
        assert conn.execute(select(func.pg_terminate_backend(pid))).scalar()
    assert index.lookup(q, namespace=ns.key, domain="tenant-1").entry == ref


def test_record_hit_counts_reuse_and_reports_evicted_entries(index, admit, engine, clock):
    ref = admit("tenant-1", unit(np.ones(DIM)))
    clock.advance(5)
    assert index.record_hit(ref.id, steps_saved=2) and index.record_hit(ref.id, steps_saved=1.5)
    with engine.connect() as conn:
        row = conn.execute(select(CacheEntry.__table__).where(CacheEntry.id == ref.id)).one()
        assert (row.hits, row.steps_saved_total, row.last_hit_at) == (2, 3.5, T0 + timedelta(seconds=5))
    assert not index.record_hit(uuid.uuid4(), steps_saved=1)


def test_a_failed_insert_deletes_the_objects_it_was_for(index, store, ns):
    stored = write_entry(store, "tenant-1", ns.key, make_run())
    assert store.exists(object_key(stored.prefix))
    with pytest.raises(Exception, match="384"):  # wrong embedding size: the row is refused
        index.admit(store, stored, namespace=ns, domain="tenant-1", embedding=np.ones(3), prompt="p",
                    seed=0, ttl_s=60)  # fmt: skip
    assert not store.exists(object_key(stored.prefix))


def test_expired_entries_never_match_and_are_evicted_first(index, admit, engine, store, clock, ns):
    q = unit(np.random.default_rng(4).standard_normal(DIM))
    short, long = admit("tenant-ttl", q, ttl_s=60), admit("tenant-ttl", -q, ttl_s=3600)
    clock.advance(30)
    assert index.lookup(q, namespace=ns.key, domain="tenant-ttl").entry == short
    clock.advance(31)
    assert index.lookup(q, namespace=ns.key, domain="tenant-ttl").entry == long  # the expired one is skipped
    reports = Evictor(engine, store, budget_bytes=10**12, clock=clock).sweep()
    assert (reports["tenant-ttl"].expired, reports["tenant-ttl"].evicted) == (1, 0)
    assert row_ids(engine, "tenant-ttl") == {long.id}
    assert not store.exists(object_key(short.object_prefix)) and store.exists(object_key(long.object_prefix))


def test_eviction_keeps_the_domain_under_budget_by_lcbfu(index, admit, engine, store, clock):
    rng = np.random.default_rng(5)
    popular, useful, stale = (
        admit("tenant-lcbfu", v, seed=i) for i, v in enumerate(unit(rng.standard_normal((3, DIM))))
    )
    clock.advance(2 * 3600)
    fresh = admit("tenant-lcbfu", unit(rng.standard_normal(DIM)), seed=3)
    other_domain = admit("tenant-other", unit(rng.standard_normal(DIM)), seed=4)
    index.record_hit(popular.id, 2)
    index.record_hit(popular.id, 2)
    index.record_hit(useful.id, 1)
    # Scores: popular 4 + credit, useful 1 + credit, fresh ~1 (new-entry credit), stale ~0.25 (credit after 2 h).
    budget = popular.bytes + useful.bytes
    report = Evictor(engine, store, budget_bytes=budget, clock=clock).enforce("tenant-lcbfu")
    assert (report.expired, report.evicted, report.freed_bytes) == (0, 2, stale.bytes + fresh.bytes)
    assert row_ids(engine, "tenant-lcbfu") == {popular.id, useful.id}
    assert row_ids(engine, "tenant-other") == {other_domain.id}
    for ref, kept in ((popular, True), (useful, True), (stale, False), (fresh, False), (other_domain, True)):
        assert store.exists(object_key(ref.object_prefix)) == kept


def test_a_second_evictor_of_the_same_domain_skips(engine, store):
    with engine.begin() as holder:
        assert holder.scalar(select(func.pg_try_advisory_xact_lock(eviction_lock_key("tenant-busy"))))
        assert Evictor(engine, store, budget_bytes=0).enforce("tenant-busy").skipped
    assert not Evictor(engine, store, budget_bytes=0).enforce("tenant-busy").skipped


@pytest.fixture
def fetcher(store) -> Iterator[EntryFetcher]:
    fetcher = EntryFetcher(store, LocalEntryCache(max_bytes=64 * 1024**2))
    yield fetcher
    fetcher.close()


def test_a_reader_that_lost_the_race_with_eviction_gets_entry_unavailable(index, admit, engine, store, ns, fetcher):
    q = unit(np.random.default_rng(6).standard_normal(DIM))
    admit("tenant-race", q)
    match = index.lookup(q, namespace=ns.key, domain="tenant-race")
    Evictor(engine, store, budget_bytes=0).enforce("tenant-race")  # between the reader's lookup and fetch
    with pytest.raises(EntryUnavailable):
        fetcher.prefetch(match.entry).result(30)
    assert not index.record_hit(match.entry.id, 1)
    assert index.lookup(q, namespace=ns.key, domain="tenant-race") is None


def test_a_missing_tensor_object_is_unavailable(admit, store, fetcher):
    ref = admit("tenant-1", unit(np.ones(DIM)))
    store.delete(object_key(ref.object_prefix))
    with pytest.raises(EntryUnavailable):
        fetcher.fetch(ref)


def test_fetch_over_s3_then_from_the_local_lru(admit, store, fetcher):
    ref = admit("tenant-1", unit(np.ones(DIM)), seed=9)
    future = fetcher.prefetch(ref)  # overlaps with whatever the caller does next (prompt encoding)
    run = future.result(30)
    assert run.seed == 9 and run.latents.keys() == {1, 2, 3, 4}
    store.delete(object_key(ref.object_prefix))
    assert fetcher.fetch(ref) is run  # served from memory: the object is gone from S3


def test_the_sweep_command_expires_entries_in_every_domain(database_url, settings, service_env, engine, ns):
    store = open_store(settings)  # where the command, configured by the same environment, deletes
    index = CacheIndex(database_url, clock=Clock(utcnow() - timedelta(hours=2)))
    refs = []
    for domain in ("tenant-sweep-a", "tenant-sweep-b"):
        stored = write_entry(store, domain, ns.key, make_run())
        refs.append(index.admit(store, stored, namespace=ns, domain=domain, embedding=unit(np.ones(DIM)),
                                prompt="p", seed=0, ttl_s=60))  # fmt: skip
    index.engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "cache", "sweep"],
        env={**os.environ, **service_env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for ref in refs:
        assert f"{ref.domain}: 1 expired, 0 evicted" in done.stdout
        assert row_ids(engine, ref.domain) == set() and not store.exists(object_key(ref.object_prefix))
