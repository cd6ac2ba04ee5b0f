"""Cache lookup latency on a real pgserver Postgres + pgvector, at a given number of entries.

    python bench/cache_lookup.py --entries 100000
    python bench/cache_lookup.py --entries 1000000 --shared-buffers 4GB

Entries are synthetic 384-d unit vectors shaped like prompt embeddings: a common
direction all prompts share, a topic (Zipf-popular, the same topics across tenants)
and per-prompt noise, so that same-topic prompts score ~0.8 and others ~0.3. They are
spread over a few domains (tenants, "shared") and namespaces of very different sizes.
Queries follow the traffic (partition chosen by size): most are near-duplicates of
an existing entry, the rest new prompts of a random topic.

Timed: ``CacheIndex.lookup`` as the worker calls it, after a warm-up of 200 lookups
(which also counts most partitions; the index counts each once per ``size_ttl_s``).
Recall@1 is checked against a numpy brute force per partition. For comparison, the
naive filtered HNSW query (default ef_search 40, no fallback) is run on the same
queries: how often it returns nothing or not the nearest entry.

Load once, time later (the HNSW build of 1M entries takes ~8.5 min on 2 cores)::

    python bench/cache_lookup.py --entries 1000000 --shared-buffers 4GB --pgdata /tmp/pg1m --build-only
    python bench/cache_lookup.py --entries 1000000 --shared-buffers 4GB --pgdata /tmp/pg1m

Prints p50/p99 lookup latency (wall and CPU), retries by path, recall@1 overall, on near-duplicates
and on new prompts, and the naive query's misses. Measured figures: ``bench/results/cache_lookup.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pgserver
import psycopg
from pgserver._commands import pg_ctl
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from chorus.cache.index import CacheIndex, LookupConfig
from chorus.db.migrate import upgrade

DIM = 384
# (domain, share of all entries); each domain has two namespaces, split 75/25.
DOMAINS = [("shared", 0.35), *((f"tenant-{i}", s) for i, s in enumerate([0.2, 0.15, 0.1, 0.08, 0.06, 0.04, 0.02]))]
NAMESPACES = [("a" * 64, 0.75), ("b" * 64, 0.25)]


@dataclass
class Data:
    vectors: np.ndarray  # (n, DIM) float32, unit rows
    partition: np.ndarray  # (n,) index into partitions
    partitions: list[tuple[str, str]]  # (domain, namespace)
    ids: list[uuid.UUID]
    topics: np.ndarray  # (topics, DIM)
    common: np.ndarray  # (DIM,)
    topic_p: np.ndarray  # topic popularity


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def prompt_like(rng: np.random.Generator, data_common: np.ndarray, topic_vecs: np.ndarray) -> np.ndarray:
    """0.6 common + 0.8 topic + 0.5 noise: cos ~0.8 within a topic, ~0.3 across topics."""
    noise = unit(rng.standard_normal((len(topic_vecs), DIM)))
    return unit(0.6 * data_common + 0.8 * topic_vecs + 0.5 * noise)


def generate(n: int, rng: np.random.Generator) -> Data:
    partitions, shares = [], []
    for domain, d_share in DOMAINS:
        for namespace, n_share in NAMESPACES:
            partitions.append((domain, namespace))
            shares.append(d_share * n_share)
    partition = rng.choice(len(partitions), size=n, p=np.array(shares) / sum(shares))
    n_topics = max(100, n // 100)
    topics = unit(rng.standard_normal((n_topics, DIM)))
    common = unit(rng.standard_normal(DIM))
    topic_p = 1.0 / np.arange(1, n_topics + 1) ** 1.1
    topic_p /= topic_p.sum()
    vectors = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        vectors[start:stop] = prompt_like(rng, common, topics[rng.choice(n_topics, stop - start, p=topic_p)])
    return Data(vectors, partition, partitions, [uuid.uuid4() for _ in range(n)], topics, common, topic_p)


def start_postgres(pgdata: Path, shared_buffers: str) -> pgserver.PostgresServer:
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}';")
    # pgserver has no restart; pg_ctl restart keeps the socket options it started with.
    pg_ctl(["-w", "-l", str(server.log), "restart"], pgdata=server.pgdata, user=server.system_user)
    return server


def load(conn: psycopg.Connection, data: Data, build_workers: int) -> tuple[float, float]:
    """COPY the rows with the HNSW index dropped, then build it: the fast way to load."""
    now = datetime.now(UTC)
    expires = now + timedelta(days=365)
    info = Jsonb({"bench": True})
    cur = conn.cursor()
    cur.execute("DROP INDEX IF EXISTS ix_cache_entries_embedding_hnsw")
    columns = (
        "id, domain, namespace, namespace_info, prompt, embedding, seed, object_prefix, bytes, "
        "steps_stored, hits, steps_saved_total, created_at, expires_at"
    )
    types = ["uuid", "text", "text", "jsonb", "text", "vector", "int8", "text", "int8", "jsonb", "int4"]
    types += ["float8", "timestamptz", "timestamptz"]
    t0 = time.perf_counter()
    with cur.copy(f"COPY cache_entries ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for i, (entry_id, vec, part) in enumerate(zip(data.ids, data.vectors, data.partition)):
            domain, namespace = data.partitions[part]
            prefix = f"cache/{domain}/{namespace}/{entry_id}"
            row = (entry_id, domain, namespace, info, f"prompt {i}", vec, i, prefix, 400_000)
            copy.write_row((*row, Jsonb([0, 1, 2, 3]), 0, 0.0, now, expires))
    conn.commit()
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cur.execute("SET maintenance_work_mem = '6GB'")
    cur.execute(f"SET max_parallel_maintenance_workers = {build_workers}")
    cur.execute(
        "CREATE INDEX ix_cache_entries_embedding_hnsw ON cache_entries USING hnsw (embedding vector_cosine_ops)"
    )
    conn.commit()
    index_s = time.perf_counter() - t0
    conn.autocommit = True
    cur.execute("VACUUM ANALYZE cache_entries")  # visibility map for index-only partition counts, planner stats
    conn.autocommit = False
    return copy_s, index_s


def make_queries(data: Data, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(queries, partition of each, is_new): 70% near-duplicates of an entry, 30% new prompts."""
    picks = rng.integers(0, len(data.vectors), count)  # by traffic: a random entry's partition
    parts = data.partition[picks]
    near = unit(data.vectors[picks] + 0.2 * unit(rng.standard_normal((count, DIM))))  # cos ~0.98
    topics = data.topics[rng.choice(len(data.topics), count, p=data.topic_p)]
    fresh = prompt_like(rng, data.common, topics)
    is_new = rng.random(count) < 0.3
    return np.where(is_new[:, None], fresh, near), parts, is_new


def true_best(data: Data, queries: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Best cosine similarity within each query's partition, by brute force."""
    best = np.empty(len(queries), np.float32)
    for p in np.unique(parts):
        members = data.vectors[data.partition == p]
        mask = parts == p
        best[mask] = (queries[mask] @ members.T).max(axis=1)
    return best


def percentiles(ms: list[float]) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f}  max {max(ms):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--exact-max-rows", type=int, default=LookupConfig.exact_max_rows)
    parser.add_argument("--ef-search", type=int, nargs="+", default=list(LookupConfig.ef_search))
    parser.add_argument("--shared-buffers", default="1GB")
    parser.add_argument("--build-workers", type=int, default=1, help="parallel HNSW build workers besides the leader")
    parser.add_argument("--pgdata", type=Path, help="keep the database here; reused if it was loaded with these args")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--build-only", action="store_true", help="load the entries into --pgdata and stop (time them in a later run)"
    )
    args = parser.parse_args()
    if args.build_only and not args.pgdata:
        parser.error("--build-only needs --pgdata")

    rng = np.random.default_rng(args.seed)
    data = generate(args.entries, rng)
    sizes = np.bincount(data.partition, minlength=len(data.partitions))
    print(f"{args.entries} entries in {len(data.partitions)} partitions, sizes {sorted(sizes.tolist())}")
    queries, parts, is_new = make_queries(data, args.queries, rng)
    best = true_best(data, queries, parts)

    with tempfile.TemporaryDirectory(prefix="pgb", dir="/tmp") as tmp:
        pgdata = args.pgdata or Path(tmp) / "pg"
        marker = pgdata.parent / f"{pgdata.name}.loaded-{args.entries}-{args.seed}"
        server = start_postgres(pgdata, args.shared_buffers)
        try:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            upgrade(url)  # a no-op on a reused database
            with psycopg.connect(server.get_uri()) as conn:
                register_vector(conn)
                if marker.exists():
                    print(f"reusing the entries loaded in {pgdata}")
                else:
                    copy_s, index_s = load(conn, data, args.build_workers)
                    marker.touch()
                    print(f"COPY {copy_s:.1f} s, HNSW build {index_s:.1f} s")
                if args.build_only:
                    return
                naive(conn, data, queries, parts, best)
            measure(url, data, queries, parts, is_new, best, LookupConfig(args.exact_max_rows, tuple(args.ef_search)))
        finally:
            pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)


def naive(conn: psycopg.Connection, data: Data, queries: np.ndarray, parts: np.ndarray, best: np.ndarray) -> None:
    """The plain filtered HNSW query with pgvector's defaults: what goes wrong without the lookup's paths."""
    empty = wrong = 0
    ms = []
    for q, p in zip(queries, parts):
        domain, namespace = data.partitions[p]
        t0 = time.perf_counter()
        row = conn.execute(
            "SELECT 1 - (embedding <=> %s) FROM cache_entries WHERE domain = %s AND namespace = %s "
            "ORDER BY embedding <=> %s LIMIT 1",
            (q, domain, namespace, q),
        ).fetchone()
        ms.append((time.perf_counter() - t0) * 1000)
        if row is None:
            empty += 1
        elif row[0] < best[len(ms) - 1] - 1e-4:
            wrong += 1
    conn.rollback()
    n = len(queries)
    print(f"naive HNSW (ef_search 40): empty {empty / n:.1%}, not nearest {wrong / n:.1%}; ms {percentiles(ms)}")


def measure(
    url: str,
    data: Data,
    queries: np.ndarray,
    parts: np.ndarray,
    is_new: np.ndarray,
    best: np.ndarray,
    cfg: LookupConfig,
) -> None:
    """Wall time per lookup, and its CPU time (this thread + the Postgres backend): on a shared,
    busy host the wall time is mostly waiting for a CPU, the CPU time is what a lookup costs."""
    index = CacheIndex(url, cfg)
    for q, p in zip(queries[:200], parts[:200]):  # warm-up: connection pool, caches
        index.lookup(q, domain=data.partitions[p][0], namespace=data.partitions[p][1])
    with index.engine.connect() as conn:  # single-threaded: the pool holds this one connection
        schedstat = Path(f"/proc/{conn.exec_driver_sql('SELECT pg_backend_pid()').scalar()}/schedstat")

    def cpu_ns() -> int:  # schedstat's first field: the backend's time on a CPU, in ns
        return time.thread_time_ns() + int(schedstat.read_text().split()[0])

    wall: dict[str, list[float]] = {"all": []}
    cpu: dict[str, list[float]] = {"all": []}
    nearest = np.zeros(len(queries), bool)
    for i, (q, p, b) in enumerate(zip(queries, parts, best)):
        domain, namespace = data.partitions[p]
        c0, t0 = cpu_ns(), time.perf_counter()
        match = index.lookup(q, domain=domain, namespace=namespace)
        elapsed, used = (time.perf_counter() - t0) * 1e3, (cpu_ns() - c0) / 1e6
        assert match is not None and match.entry.domain == domain and match.entry.namespace == namespace
        for key in ("all", match.path):
            wall.setdefault(key, []).append(elapsed)
            cpu.setdefault(key, []).append(used)
        nearest[i] = match.similarity >= b - 1e-4
    print(
        f"lookup (exact up to {cfg.exact_max_rows} rows, then ef_search {cfg.ef_search}): recall@1 {nearest.mean():.2%}"
        f" (near-duplicates {nearest[~is_new].mean():.2%}, new prompts {nearest[is_new].mean():.2%})"
    )
    for path in sorted(wall, key=lambda k: (k != "all", k)):
        print(f"  {path:14s} n={len(wall[path]):5d}  wall ms {percentiles(wall[path])}")
        print(f"  {'':14s}          cpu ms  {percentiles(cpu[path])}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, nice {os.nice(0)}")


if __name__ == "__main__":
    main()
