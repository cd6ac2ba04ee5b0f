"""The cache's share of a worker job's time, through the service's backend: the pgvector index in a pgserver
Postgres and entries in a local-folder store, each request run as the worker runs a batch of one (open:
key, look up, fetch, plan; denoise; settle: admit, evict), beside the same request with the cache off.

    nice -n 5 env OMP_NUM_THREADS=1 python -m bench.lookup_share --stream unrelated --requests 16 --steps 4

A job's time is until its frames are there, as the worker delivers them; its settle runs on the cache's
thread beside the next job (``CacheSession.settle_later``). The two take turns ``CHUNK`` requests at a time
(load from outside slows both alike), each waiting for its last settle (timed, counted), each with its own
text-encoding LRU. Prints per request and in all: the job's seconds with the cache and without, and the
cache's phases (``lookup``: what of the lookups, fetches and planning the job waited for; ``embed``: the
cache key; ``settle``: admission and eviction, on the cache's thread) as shares of the cached job.
Measured figures: ``bench/results/lossless.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pgserver

from chorus.bench.systems import make_request
from chorus.bench.workload import STREAMS, make_trace
from chorus.cache.backends.postgres import PostgresBackend
from chorus.cache.embedder import MiniLMEmbedder
from chorus.config import get_settings
from chorus.db.migrate import upgrade
from chorus.db.models import Tenant
from chorus.db.session import session_scope
from chorus.fingerprint import request_fingerprint
from chorus.models.loader import load_adapter
from chorus.reuse.session import CacheJob, ReuseCache, ReuseConfig
from chorus.storage.local import LocalStore

OFF = ReuseConfig(enabled=False)
CHUNK = 4  # requests per turn: each system runs this many, then waits for its last settle (timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", choices=STREAMS, default="unrelated")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat-share", type=float, default=0.0)
    parser.add_argument("--settle", choices=("later", "now"), default="later", help="now: in the job, as before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            upgrade(url)
            run(args, get_settings().model_copy(update={"database_url": url}), Path(tmp) / "store")
        finally:
            server.cleanup()


def one_job(
    adapter, embedder, cache: ReuseCache, item, steps: int, tenant: str, name: str, later: bool
) -> dict[str, Any]:
    """One request as the worker runs a batch of one: until its video is there (its settle runs on the
    cache's thread, beside the next request's start)."""
    request = make_request(adapter, item, steps)
    key = str(uuid.uuid4())
    fingerprint = request_fingerprint(adapter.card, request)
    job = CacheJob(key, request, tenant, fingerprint=fingerprint, video_key=f"videos/{key}.mp4")
    tick = time.perf_counter()
    session = cache.open(adapter, [job])
    session.denoise()
    if later:
        row: dict[str, Any] = {name: time.perf_counter() - tick}
        session.settle_later({key})
    else:
        session.settle({key})
        row = {name: time.perf_counter() - tick}
    if name == "cache":  # its settle's seconds are read once the chunk's settles are done
        row |= {"session": session, "fetched": float("fetch" in job.timings), "reason": job.plan.reason[:48]}
    return row


def run(args: argparse.Namespace, settings, store_root: Path) -> None:
    with session_scope(settings.database_url) as session:
        tenant = Tenant(name=f"bench-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
    adapter = load_adapter(settings.default_model, settings.models_dir, settings.device)
    embedder = MiniLMEmbedder(adapter.card.text_max_tokens, settings.device)
    backend = PostgresBackend.from_settings(settings, LocalStore(store_root))
    caches = {name: ReuseCache(backend, embedder, c) for name, c in (("cache", ReuseConfig()), ("off", OFF))}
    # Each its own text-encoding LRU and MiniLM prompt memory, as if in a worker of its own (the cache key's
    # MiniLM forward is then the one the shipped model's text encoding would run anyway).
    lrus = {name: adapter.encodings.empty_like() for name in caches}
    encoders = {id(e): e for e in (adapter.text_encoder, embedder.encoder) if hasattr(e, "remembering")}
    memories = {name: [(e, e.new_memory()) for e in encoders.values()] for name in caches}
    trace = make_trace(args.stream, args.requests, 1, repeat_share=args.repeat_share)
    rows: list[dict[str, Any]] = [{} for _ in trace]
    later = args.settle == "later"
    for start in range(0, len(trace), CHUNK):
        chunk = range(start, min(start + CHUNK, len(trace)))
        for name, cache in caches.items():
            with contextlib.ExitStack() as remembered:
                for encoder, memory in memories[name]:
                    remembered.enter_context(encoder.remembering(memory))
                adapter.encodings = lrus[name]
                for i in chunk:
                    rows[i] |= one_job(adapter, embedder, cache, trace[i], args.steps, str(tenant.id), name, later)
                if later:  # the chunk's last settle: its time is the cache's too
                    tick = time.perf_counter()
                    cache.in_order(lambda: None).result()
                    rows[chunk[-1]][name] += time.perf_counter() - tick
        for i in chunk:
            print(f"{trace[i].index:3d} {trace[i].kind:14s} {rows[i]['reason']:48s}", end=" ")
            lookup = rows[i]["session"].seconds.get("plan", 0.0)
            print(f"cache {rows[i]['cache']:.3f}s off {rows[i]['off']:.3f}s lookup {1000 * lookup:.1f}ms", flush=True)
    for row in rows:
        row |= {phase: row["session"].seconds.get(phase, 0.0) for phase in ("embed", "plan", "settle")}
    warm = rows[1:]  # the first request pays for connections and the model's first forward
    total = sum(r["cache"] for r in warm)
    print(f"\n{args.stream}, {len(warm)} requests after the first, {args.steps} steps, batch 1, settle {args.settle}:")
    for name in ("cache", "off"):
        print(f"  job seconds with the cache {name:5s}: median {statistics.median(r[name] for r in warm):.3f}")
    print(f"  overhead (sum cache / sum off - 1): {100 * (total / sum(r['off'] for r in warm) - 1):+.2f}%")
    for phase in ("plan", "embed", "settle"):
        seconds = [r[phase] for r in warm]
        label = "lookup" if phase == "plan" else phase
        print(
            f"  {label:6s}: median {1000 * statistics.median(seconds):.1f} ms,"
            f" {100 * sum(seconds) / total:.2f}% of the cached jobs' time"
        )
    print(f"  lookups that fetched an entry: {sum(r['fetched'] for r in warm):.0f} of {len(warm)}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, nice {os.nice(0)}")


if __name__ == "__main__":
    main()
