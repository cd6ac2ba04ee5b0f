"""``GET /metrics``: the service's stats as Prometheus families, collected at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from chorus.config import Settings
from chorus.metrics.collect import collect
from chorus.metrics.stats import ServiceStats


def families(stats: ServiceStats) -> Iterator[Metric]:
    depth = GaugeMetricFamily("chorus_queue_depth", "Messages waiting in the queue's Redis lists", labels=["queue"])
    for queue, length in stats.queue_depths.items():
        depth.add_metric([queue], length)
    yield depth

    jobs = GaugeMetricFamily("chorus_jobs", "Jobs in Postgres by status", labels=["status"])
    for status, count in stats.jobs_by_status.items():
        jobs.add_metric([status], count)
    yield jobs
    yield GaugeMetricFamily("chorus_jobs_running", "Jobs being denoised now", value=stats.jobs_by_status["running"])
    yield GaugeMetricFamily(
        "chorus_oldest_queued_seconds", "Age of the oldest queued job", value=stats.oldest_queued_age_s
    )

    for name, histogram in stats.histograms.items():
        buckets = [(str(bound), count) for bound, count in zip(histogram.bounds, histogram.cumulative)]
        buckets.append(("+Inf", histogram.count))
        unit = "" if name == "batch_size" else " (seconds)"
        yield HistogramMetricFamily(
            f"chorus_job_{name}",
            f"Finished jobs' {name.replace('_', ' ')}{unit}",
            buckets=buckets,
            sum_value=histogram.total,
        )

    yield CounterMetricFamily("chorus_cache_lookups", "Jobs that looked up the cache", value=stats.cache_lookups)
    yield CounterMetricFamily("chorus_cache_hits", "Jobs that reused a cache entry", value=stats.cache_hits)
    yield GaugeMetricFamily(
        "chorus_cache_hit_ratio", "hits / lookups since the counters started", value=stats.cache_hit_ratio
    )

    yield CounterMetricFamily(
        "chorus_text_encoding_cache_hits",
        "Prompts (and negative prompts) whose text-encoder output came from a worker's LRU",
        value=stats.text_encoding_hits,
    )
    yield CounterMetricFamily(
        "chorus_text_encoding_cache_misses",
        "Prompts (and negative prompts) the text encoder ran for",
        value=stats.text_encoding_misses,
    )

    workers = stats.worker_heartbeat_ages_s
    yield GaugeMetricFamily("chorus_workers_alive", "Workers with a heartbeat in the last 30 s", value=len(workers))
    age = GaugeMetricFamily(
        "chorus_worker_heartbeat_age_seconds", "Since the worker's last heartbeat", labels=["worker"]
    )
    for worker, seconds in sorted(workers.items()):
        age.add_metric([worker], seconds)
    yield age

    rejected = CounterMetricFamily(
        "chorus_quota_rejections", "Submits refused with 429, by tenant and limit", labels=["tenant", "limit"]
    )
    for (tenant, limit), count in sorted(stats.quota_rejections.items()):
        rejected.add_metric([tenant, limit], count)
    yield rejected


class ChorusCollector(Collector):
    """Reads Postgres and Redis on each scrape (any API replica answers the same)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            stats = collect(self.settings, session, self.client)
        yield from families(stats)
