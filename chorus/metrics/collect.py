"""Reading the service's state from Postgres and the broker's Redis into a ``ServiceStats``."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chorus.broker.heartbeats import live_workers
from chorus.broker.queues import queue_depths, webhook_queue
from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.quota import quota_rejections
from chorus.metrics.record import read_cache_counters, read_encoding_counters, read_histograms
from chorus.metrics.stats import ServiceStats
from chorus.vocab import JobStatus


@dataclass(frozen=True)
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


def collect(settings: Settings, session: Session, client: redis.Redis) -> ServiceStats:
    counts = job_counts(session)
    lookups, hits = read_cache_counters(client, settings)
    encoding_hits, encoding_misses = read_encoding_counters(client, settings)
    return ServiceStats(
        queue_depths=queue_depths(client, [settings.queue_name, webhook_queue(settings)]),
        jobs_by_status=counts.by_status,
        oldest_queued_age_s=counts.oldest_queued_age_s,
        histograms=read_histograms(client, settings),
        cache_lookups=lookups,
        cache_hits=hits,
        text_encoding_hits=encoding_hits,
        text_encoding_misses=encoding_misses,
        worker_heartbeat_ages_s=live_workers(client, settings),
        quota_rejections=quota_rejections(client, settings),
    )
