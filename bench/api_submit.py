"""Submit throughput and latency of ``POST /v1/jobs`` with no worker consuming (the API's own cost).

    python bench/api_submit.py                      # starts its own stack, 2 uvicorn workers
    python bench/api_submit.py --api-workers 1 --requests 5000 --concurrency 32
    python bench/api_submit.py --url http://127.0.0.1:8000 --key chorus_…   # an API already running

Its own stack: pgserver Postgres (temp folder, migrated), Redis on 127.0.0.1:6379
(a random DB index and a queue of its own, deleted afterwards, so no worker
consumes the messages), a local-folder store, and uvicorn. Clients: one asyncio
process with ``--concurrency`` connections, each submitting back to back.
A warm-up (not timed) comes first. Prints throughput, latency percentiles and
status counts; bounded by ``--requests`` and ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chorus.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    url: str
    key: str
    pids: dict[str, int] = field(default_factory=dict)  # process trees whose CPU time is reported

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU time used so far by each process tree."""
        import psutil

        used = {}
        for name, pid in self.pids.items():
            root = psutil.Process(pid)
            times = [p.cpu_times() for p in [root, *root.children(recursive=True)]]
            used[name] = sum(t.user + t.system for t in times)
        return used


@contextmanager
def local_stack(api_workers: int) -> Iterator[Stack]:
    """Postgres, Redis, a local store and uvicorn."""
    import pgserver
    import redis

    from chorus.auth import create_key
    from chorus.db.migrate import upgrade
    from chorus.db.session import session_scope
    from chorus.tenants import get_or_create_tenant

    root = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    server = pgserver.get_server(root / "pg", cleanup_mode="delete")
    database_url = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
    upgrade(database_url)
    with session_scope(database_url) as session:
        key, _ = create_key(session, get_or_create_tenant(session, "bench"))
    queue = f"bench-{secrets.token_hex(4)}"
    broker_url = f"redis://127.0.0.1:6379/{random.randrange(1, 16)}"
    port = free_port()
    env = os.environ | {
        "CHORUS_DATABASE_URL": database_url,
        "CHORUS_BROKER_URL": broker_url,
        "CHORUS_QUEUE_NAME": queue,
        "CHORUS_STORE_URL": f"file://{root / 'store'}",
        # One tenant submits thousands of jobs here: no limits (their check still runs on every submit).
        "CHORUS_QUOTA_SUBMITS_PER_MINUTE": "0",
        "CHORUS_QUOTA_MAX_ACTIVE_JOBS": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    command += ["--workers", str(api_workers), "--log-level", "warning", "--no-access-log"]
    api = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("the API did not become ready")
        yield Stack(url, key, {"api": api.pid, "postgres": server.get_pid()})
    finally:
        api.terminate()
        api.wait(30)
        client = redis.Redis.from_url(broker_url)
        for name in client.scan_iter(match=f"{queue}*"):
            client.delete(name)
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


async def load(url: str, key: str, requests: int, concurrency: int, max_seconds: float) -> tuple[list[float], Counter]:
    """Submit ``requests`` jobs over ``concurrency`` connections; returns latencies (s) and status counts."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    remaining = requests
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def client_loop(n: int) -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                body = {"prompt": f"a red square moving right, take {n}-{remaining}", "seed": remaining}
                started = time.perf_counter()
                response = await client.post("/v1/jobs", json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1

        await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
    return latencies, statuses


def report(latencies: list[float], statuses: Counter, seconds: float) -> None:
    ms = sorted(1000 * x for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(f"requests {len(ms)} in {seconds:.2f} s: {len(ms) / seconds:.0f} submits/s")
    mean = statistics.mean(ms)
    print(f"latency ms: p50 {q[49]:.1f}  p90 {q[89]:.1f}  p99 {q[98]:.1f}  max {ms[-1]:.1f}  mean {mean:.1f}")
    print("status counts:", dict(statuses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an API already running (else a local stack is started)")
    parser.add_argument("--key", help="API key for --url")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes of the local stack")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()

    def run(stack: Stack) -> None:
        asyncio.run(load(stack.url, stack.key, args.warmup, args.concurrency, args.max_seconds))
        cpu_before = stack.cpu_seconds() | {"client": time.process_time()}
        started = time.perf_counter()
        latencies, statuses = asyncio.run(load(stack.url, stack.key, args.requests, args.concurrency, args.max_seconds))
        report(latencies, statuses, time.perf_counter() - started)
        # CPU per submit: unlike latency, it hardly depends on what else the machine runs.
        for name, seconds in (stack.cpu_seconds() | {"client": time.process_time()}).items():
            print(f"{name} CPU per submit: {1000 * (seconds - cpu_before[name]) / len(latencies):.2f} ms")

    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        run(Stack(args.url, args.key))
    else:
        with local_stack(args.api_workers) as stack:
            print(f"local stack: {args.api_workers} uvicorn worker(s), concurrency {args.concurrency}")
            run(stack)


if __name__ == "__main__":
    main()
