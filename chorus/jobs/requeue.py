"""Re-sending the message of jobs the broker lost. Postgres is the truth about a job; Redis only carries hints.

A job can be left without a message: Redis restarted without persistence (its
lists and Celery's ``unacked`` hash are gone), or a process died between the
commit of a new job and its enqueue. And a whole worker that died (SIGKILL,
a lost node) holds its message as "taken" until Redis's visibility timeout,
an hour. The sweep lists the job ids the broker holds (the queue's lists, and
the ``unacked`` hash of messages a worker has taken but not acknowledged) and
re-enqueues every job older than a grace period that is queued with no
message at all, or running under a worker whose heartbeat has expired with no
message waiting (the message then makes the next worker take the job over,
see ``recovery``). A duplicate is harmless: claims are conditional, so a
message that finds its job taken or ended is dropped.

Every API process runs the sweep; a Redis lock lets one of them do it per interval.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from chorus.broker.heartbeats import heartbeats_settled, live_workers
from chorus.broker.held import held_messages
from chorus.config import Settings
from chorus.db.models import Job
from chorus.vocab import JobStatus

log = logging.getLogger(__name__)


def unsent_jobs(session: Session, client: redis.Redis, settings: Settings, grace_s: float) -> list[uuid.UUID]:
    """Jobs older than ``grace_s`` that need a message and have none (oldest first)."""
    # Postgres first, then Redis: a job claimed in between is running under a live worker and left alone.
    rows = session.execute(
        select(Job.id, Job.status, Job.worker_id)
        .where(
            or_(Job.status == JobStatus.queued, Job.status == JobStatus.running),
            Job.created_at < func.now() - timedelta(seconds=grace_s),
        )
        .order_by(Job.created_at)
    ).all()
    if not rows:
        return []
    held = held_messages(client, settings.queue_name)
    running = {row.worker_id for row in rows if row.status == JobStatus.running}
    # Just after a Redis restart every heartbeat is missing: running jobs wait until they mean something.
    alive = live_workers(client, settings).keys() if heartbeats_settled(client, settings) else running

    def unsent(job_id: str, status: JobStatus, worker_id: str | None) -> bool:
        if status == JobStatus.queued:
            return job_id not in held.waiting and job_id not in held.taken
        # A dead worker's message stays "taken" until the visibility timeout (an hour): don't wait for it.
        return worker_id not in alive and job_id not in held.waiting

    return [row.id for row in rows if unsent(str(row.id), row.status, row.worker_id)]


def sweep(
    session: Session, client: redis.Redis, settings: Settings, enqueue: Callable[[str], None], interval_s: float
) -> list[uuid.UUID]:
    """One sweep, if no other process has done one in the last ``interval_s``; returns the jobs re-enqueued."""
    lock = f"chorus:{settings.queue_name}:requeue-sweep"
    if not client.set(lock, "1", nx=True, px=max(1, int(interval_s * 900))):  # 90%: the next tick gets it
        return []
    lost = unsent_jobs(session, client, settings, settings.requeue_after_s)
    for job_id in lost:
        enqueue(str(job_id))
    if lost:
        log.warning("re-enqueued %d jobs whose message was lost: %s", len(lost), ", ".join(map(str, lost)))
    return lost
