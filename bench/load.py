"""Bounded load on a running stack: N clients submit jobs and poll each to its end; checks nothing is lost.

    chorus up &                                          # or any stack: API + M workers (+ `chorus worker` more)
    python bench/load.py --url http://127.0.0.1:8000 --key chorus_… --jobs 500 --clients 16 --steps 1

Each client submits a job (with an Idempotency-Key, retried on 503 or a
dropped connection, so a broker blip cannot duplicate it), then polls it until
it ends, then submits the next. ``--steps 1`` makes the model step trivial (the
project's small model, one denoising step), so the queue, API and workers are
what is measured. Reports throughput, p50/p99 submit and poll latency, the
final statuses, and the exactly-once checks: every accepted job id distinct
and terminal, and with ``--database-url`` one row per id, each claimed once
(attempts) and never changed after the client saw it end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass
class Results:
    submit_s: list[float] = field(default_factory=list)
    poll_s: list[float] = field(default_factory=list)
    ended: dict[str, dict] = field(default_factory=dict)  # job id -> the job as the client first saw it ended
    accepted: list[str] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    submit_retries: int = 0
    poll_errors: int = 0


async def submit(client: httpx.AsyncClient, body: dict, results: Results) -> str | None:
    key = uuid.uuid4().hex
    for _ in range(20):
        started = time.perf_counter()
        try:
            response = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            response = None
        results.submit_s.append(time.perf_counter() - started)
        if response is not None and response.status_code == 202:
            return response.json()["id"]
        if response is not None and response.status_code != 503:
            results.refused[response.status_code] += 1
            return None
        results.submit_retries += 1
        await asyncio.sleep(0.5)
    results.refused["gave up"] += 1
    return None


async def poll(client: httpx.AsyncClient, job_id: str, results: Results, interval_s: float) -> None:
    while True:
        started = time.perf_counter()
        try:
            response = await client.get(f"/v1/jobs/{job_id}")
        except httpx.TransportError:  # a dropped keep-alive connection: poll again
            results.poll_errors += 1
            await asyncio.sleep(interval_s)
            continue
        results.poll_s.append(time.perf_counter() - started)
        if response.status_code == 200 and response.json()["status"] in TERMINAL:
            results.ended[job_id] = response.json()
            return
        await asyncio.sleep(interval_s)


async def run(args: argparse.Namespace) -> tuple[Results, float]:
    results = Results()
    remaining = args.jobs
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Bearer {args.key}"}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, limits=limits, timeout=30) as client:

        async def one_client(n: int) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                body = {"prompt": f"a red square moving right {n}-{remaining}", "num_inference_steps": args.steps}
                job_id = await submit(client, body, results)
                if job_id is not None:
                    results.accepted.append(job_id)
                    await asyncio.wait_for(poll(client, job_id, results, args.poll_interval), args.job_timeout)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(args.clients)))
    return results, time.perf_counter() - started


def exactly_once(results: Results, database_url: str | None) -> list[str]:
    """Problems found (empty: every accepted job ended exactly once)."""
    problems = []
    if len(set(results.accepted)) != len(results.accepted):
        problems.append("a job id was returned twice")
    missing = set(results.accepted) - results.ended.keys()
    if missing:
        problems.append(f"{len(missing)} accepted jobs never ended")
    if database_url:
        from sqlalchemy import create_engine, text

        with create_engine(database_url).connect() as connection:
            rows = connection.execute(
                text("SELECT id::text, status::text, attempts, completed_at FROM jobs WHERE id::text = ANY(:ids)"),
                {"ids": results.accepted},
            ).all()
        if len(rows) != len(set(results.accepted)):
            problems.append(f"{len(rows)} rows for {len(set(results.accepted))} accepted jobs")
        reclaimed = [row.id for row in rows if row.attempts > 1]
        if reclaimed:
            problems.append(f"{len(reclaimed)} jobs ran more than once (attempts > 1)")
        changed = [row.id for row in rows if row.status != results.ended[row.id]["status"]]
        if changed:
            problems.append(f"{len(changed)} jobs changed status after they ended")
    return problems


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    if len(ms) < 2:
        return "n/a"
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:.1f} ms  p99 {q[98]:.1f} ms  max {ms[-1]:.1f} ms  ({len(ms)} requests)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key (chorus keys create)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs to submit in all (the bound)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, each submit-then-poll")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps per job (1: a trivial model step)")
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--job-timeout", type=float, default=600, help="a job not ended by then fails the run")
    parser.add_argument("--database-url", help="also check the rows: one per job, claimed once")
    args = parser.parse_args()

    results, seconds = asyncio.run(run(args))
    print(
        f"{len(results.accepted)} jobs accepted, {len(results.ended)} ended in {seconds:.1f} s: "
        f"{len(results.ended) / seconds:.2f} jobs/s ({args.clients} clients)"
    )
    print("submit latency:", percentiles(results.submit_s), f"retries {results.submit_retries}")
    print("poll latency:  ", percentiles(results.poll_s), f"transport errors {results.poll_errors}")
    print("final statuses:", dict(Counter(job["status"] for job in results.ended.values())))
    if results.refused:
        print("refused:", dict(results.refused))
    problems = exactly_once(results, args.database_url)
    print("exactly once:", "ok" if not problems else "; ".join(problems))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
