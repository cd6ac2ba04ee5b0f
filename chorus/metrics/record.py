"""Workers' job figures, kept in the broker's Redis so that any API replica can export them.

Why Redis: workers come and go (KEDA scales them to zero) and a pool child has no port to scrape, while
every API replica can read the broker's Redis. Histogram buckets are cumulative counters (HINCRBY); a
Redis restart resets them, which Prometheus treats as a counter reset. Keys start with the queue name,
so deployments (and test sessions) sharing one Redis keep apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from chorus.broker.client import broker_redis
from chorus.config import Settings
from chorus.metrics.stats import HISTOGRAMS, Histogram, JobStats

log = logging.getLogger(__name__)


def key(settings: Settings, *parts: str) -> str:
    return ":".join((settings.queue_name, "metrics", *parts))


class JobMetricsRecorder:
    """Observes finished jobs into Redis; never raises (metrics must never fail a job)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or broker_redis(settings, socket_timeout=2, socket_connect_timeout=2)

    def observe(self, jobs: Iterable[JobStats]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for job in jobs:
                for name, value in job.histogram_values().items():
                    hist = key(self.settings, "hist", name)
                    for bound in HISTOGRAMS[name]:
                        if value <= bound:
                            pipe.hincrby(hist, str(bound), 1)
                    pipe.hincrby(hist, "+Inf", 1)
                    pipe.hincrbyfloat(hist, "sum", value)
                if job.cache_looked_up:
                    pipe.hincrby(key(self.settings, "cache"), "lookups", 1)
                    pipe.hincrby(key(self.settings, "cache"), "hits", int(job.cache_hit))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record job metrics: %s", exc)

    def observe_encodings(self, hits: int, misses: int) -> None:
        """Prompts served by a worker's text-encoding LRU (``hits``) and by its encoder (``misses``)."""
        if not hits and not misses:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(key(self.settings, "text_encodings"), "hits", hits)
            pipe.hincrby(key(self.settings, "text_encodings"), "misses", misses)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record text-encoding counts: %s", exc)


def read_histograms(client: redis.Redis, settings: Settings) -> dict[str, Histogram]:
    histograms = {}
    for name, bounds in HISTOGRAMS.items():
        raw = {k.decode(): float(v) for k, v in client.hgetall(key(settings, "hist", name)).items()}
        cumulative = [raw.get(str(bound), 0.0) for bound in bounds] + [raw.get("+Inf", 0.0)]
        histograms[name] = Histogram(tuple(float(b) for b in bounds), tuple(cumulative), raw.get("sum", 0.0))
    return histograms


def read_cache_counters(client: redis.Redis, settings: Settings) -> tuple[int, int]:
    """(lookups, hits) since the counters started."""
    raw = {k.decode(): int(v) for k, v in client.hgetall(key(settings, "cache")).items()}
    return raw.get("lookups", 0), raw.get("hits", 0)


def read_encoding_counters(client: redis.Redis, settings: Settings) -> tuple[int, int]:
    """(hits, misses) of the workers' text-encoding LRUs since the counters started."""
    raw = {k.decode(): int(v) for k, v in client.hgetall(key(settings, "text_encodings")).items()}
    return raw.get("hits", 0), raw.get("misses", 0)
