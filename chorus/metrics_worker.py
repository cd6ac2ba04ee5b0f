"""What workers record for ``GET /metrics``: job histograms and heartbeats, kept in Redis.

Why Redis: workers come and go (KEDA scales them to zero) and a pool child
has no port to scrape, while every API replica can read the broker's Redis.
Histogram buckets are cumulative counters (HINCRBY), so any API replica can
expose them at scrape time; a Redis restart resets them, which Prometheus
treats as a counter reset. Keys start with the queue name, so deployments
(and test sessions) sharing one Redis keep apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis

from chorus.broker_redis import broker_redis
from chorus.config import Settings

log = logging.getLogger(__name__)

# Seconds buckets fit video jobs (seconds to tens of minutes); batch sizes count jobs.
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
HISTOGRAMS = {
    "queue_seconds": SECONDS_BUCKETS,
    "run_seconds": SECONDS_BUCKETS,
    "denoise_seconds": SECONDS_BUCKETS,
    "batch_size": BATCH_BUCKETS,
}
HEARTBEAT_EVERY_S = 10
HEARTBEAT_TTL_S = 3 * HEARTBEAT_EVERY_S


def key(settings: Settings, *parts: str) -> str:
    return ":".join((settings.queue_name, "metrics", *parts))


def heartbeat_prefix(settings: Settings) -> str:
    return f"{settings.queue_name}:workers:"


def heartbeats_settled(client: redis.Redis) -> bool:
    """Whether a missing heartbeat means a dead worker: not until Redis has been up for a heartbeat TTL,
    since a restarted Redis has lost every live worker's key too."""
    return int(client.info("server")["uptime_in_seconds"]) >= HEARTBEAT_TTL_S


class JobMetricsRecorder:
    """Observes finished jobs' metrics dicts (as the runner writes them) into Redis; never raises."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or broker_redis(settings, socket_timeout=2, socket_connect_timeout=2)

    def observe(self, job_metrics: Iterable[dict[str, Any]]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for metrics in job_metrics:
                for name, buckets in HISTOGRAMS.items():
                    value = metrics.get(name)
                    if value is None:
                        continue
                    hist = key(self.settings, "hist", name)
                    for bound in buckets:
                        if value <= bound:
                            pipe.hincrby(hist, str(bound), 1)
                    pipe.hincrby(hist, "+Inf", 1)
                    pipe.hincrbyfloat(hist, "sum", float(value))
                cache = metrics.get("cache")
                if isinstance(cache, dict) and cache.get("looked_up"):  # cache-off jobs look nothing up
                    pipe.hincrby(key(self.settings, "cache"), "lookups", 1)
                    pipe.hincrby(key(self.settings, "cache"), "hits", int(bool(cache["hit"])))
            pipe.execute()
        except redis.RedisError as exc:  # metrics must never fail a job
            log.warning("could not record job metrics: %s", exc)


def start_heartbeat(settings: Settings, worker_id: str, client: redis.Redis | None = None) -> threading.Event:
    """A daemon thread that marks ``worker_id`` alive every 10 s (the key expires 30 s after the last beat).
    Set the returned event to stop it."""
    client = client or broker_redis(settings, socket_timeout=2, socket_connect_timeout=2)
    stop = threading.Event()
    name = heartbeat_prefix(settings) + worker_id

    def beat() -> None:
        while not stop.is_set():
            try:
                client.set(name, time.time(), ex=HEARTBEAT_TTL_S)
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            stop.wait(HEARTBEAT_EVERY_S)

    threading.Thread(target=beat, name="chorus-heartbeat", daemon=True).start()
    return stop
