"""``GET /metrics``: a Prometheus collector that reads Postgres and Redis at scrape time. Torch-free.

- queue depth per queue: the Redis lists Celery uses (the queue, its priority
  lists ``<queue>\\x06\\x16<n>``, and the webhooks queue);
- jobs by status, running jobs, the oldest queued job's age (Postgres);
- job histograms (queue/run/denoise seconds, batch sizes), cache lookups/hits
  and worker heartbeats, which workers record in Redis (``metrics_worker``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from kombu.transport.redis import Channel
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chorus.config import Settings
from chorus.db.models import Job
from chorus.metrics_worker import HISTOGRAMS, heartbeat_prefix, key
from chorus.vocab import JobStatus
from chorus.webhooks.send import webhook_queue


def queue_lists(queue: str) -> list[str]:
    """The Redis lists of one Celery queue: priority 0 is the queue's own name."""
    return [queue] + [f"{queue}{Channel.sep}{step}" for step in Channel.priority_steps if step]


def queue_depths(client: redis.Redis, queues: list[str]) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for name in queue_lists(queue):
            pipe.llen(name)
    lengths = iter(pipe.execute())
    per = len(queue_lists(""))
    return {queue: sum(next(lengths) for _ in range(per)) for queue in queues}


@dataclass
class JobCounts:
    by_status: dict[str, int]
    oldest_queued_age_s: float


def job_counts(session: Session) -> JobCounts:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    by_status = {status.value: 0 for status in JobStatus} | {status.value: count for status, count in rows}
    age = session.scalar(
        select(func.extract("epoch", func.now() - func.min(Job.created_at))).where(Job.status == JobStatus.queued)
    )
    return JobCounts(by_status, float(age or 0.0))


def live_workers(client: redis.Redis, settings: Settings) -> dict[str, float]:
    """Worker id -> seconds since its last heartbeat, for workers whose heartbeat has not expired."""
    prefix = heartbeat_prefix(settings)
    names = list(client.scan_iter(match=prefix + "*", count=500))
    beats = client.mget(names) if names else []
    now = time.time()
    return {
        name.decode().removeprefix(prefix): now - float(beat) for name, beat in zip(names, beats) if beat is not None
    }


class ChorusCollector(Collector):
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client

    def collect(self) -> Iterator[Metric]:
        queues = [self.settings.queue_name, webhook_queue(self.settings)]
        depth = GaugeMetricFamily("chorus_queue_depth", "Messages waiting in the queue's Redis lists", labels=["queue"])
        for queue, length in queue_depths(self.client, queues).items():
            depth.add_metric([queue], length)
        yield depth

        with self.sessions() as session:
            counts = job_counts(session)
        jobs = GaugeMetricFamily("chorus_jobs", "Jobs in Postgres by status", labels=["status"])
        for status, count in counts.by_status.items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("chorus_jobs_running", "Jobs being denoised now", value=counts.by_status["running"])
        yield GaugeMetricFamily(
            "chorus_oldest_queued_seconds", "Age of the oldest queued job", value=counts.oldest_queued_age_s
        )

        for name, buckets in HISTOGRAMS.items():
            raw = {k.decode(): float(v) for k, v in self.client.hgetall(key(self.settings, "hist", name)).items()}
            cumulative = [(str(float(bound)), raw.get(str(bound), 0.0)) for bound in buckets]
            cumulative.append(("+Inf", raw.get("+Inf", 0.0)))
            unit = "" if name == "batch_size" else " (seconds)"
            yield HistogramMetricFamily(
                f"chorus_job_{name}",
                f"Finished jobs' {name.replace('_', ' ')}{unit}",
                buckets=cumulative,
                sum_value=raw.get("sum", 0.0),
            )

        cache = {k.decode(): int(v) for k, v in self.client.hgetall(key(self.settings, "cache")).items()}
        lookups, hits = cache.get("lookups", 0), cache.get("hits", 0)
        yield CounterMetricFamily("chorus_cache_lookups", "Jobs that looked up the cache", value=lookups)
        yield CounterMetricFamily("chorus_cache_hits", "Jobs that reused a cache entry", value=hits)
        yield GaugeMetricFamily(
            "chorus_cache_hit_ratio",
            "hits / lookups since the counters started",
            value=hits / lookups if lookups else 0.0,
        )

        workers = live_workers(self.client, self.settings)
        yield GaugeMetricFamily("chorus_workers_alive", "Workers with a heartbeat in the last 30 s", value=len(workers))
        age = GaugeMetricFamily(
            "chorus_worker_heartbeat_age_seconds", "Since the worker's last heartbeat", labels=["worker"]
        )
        for worker, seconds in sorted(workers.items()):
            age.add_metric([worker], seconds)
        yield age
