"""Taking over jobs whose worker died (SIGKILL, OOM, lost node), so a redelivered message completes them.

A message that finds its job ``running`` is either a duplicate (a batch
mate's own message, a redelivery while the owner still works) or the
redelivery of a dead worker's job. The owner's heartbeat in Redis
(``chorus.broker.heartbeats``) tells them apart: while it lives the message is
sent again for a later look (the job may still be orphaned: a killed pool
child's heartbeat outlives it by up to its TTL, and a Redis that restarted less
than a TTL ago has lost live workers' heartbeats too); once it has expired, the dead
worker's running jobs (its whole batch) are claimed afresh, one more attempt
each, and jobs past ``CHORUS_MAX_ATTEMPTS`` fail with ``worker_lost``. A taken job that followed a job
not taken with it (a leader elsewhere, or one just failed as lost) goes back to the queue as a job of its
own, to follow or lead afresh when claimed (``chorus.jobs.coalesce``); followers of a job taken with it
stay its row. Attempts are counted in Postgres, never in the broker.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from chorus.broker.app import RUN_JOB_TASK, enqueue_job, make_celery
from chorus.broker.client import broker_redis
from chorus.broker.heartbeats import heartbeat_prefix, heartbeat_ttl_s, heartbeats_settled
from chorus.config import Settings
from chorus.db.models import Job
from chorus.vocab import JobStatus

log = logging.getLogger(__name__)


@dataclass
class TakeOver:
    """What became of a dead worker's jobs: ``taken`` are ours to run (oldest first), ``requeued`` wait for
    a claim of their own, ``lost`` failed past their attempts."""

    taken: list[Job] = field(default_factory=list)
    lost: set[uuid.UUID] = field(default_factory=set)
    requeued: set[uuid.UUID] = field(default_factory=set)


class Recovery:
    def __init__(self, settings: Settings, worker_id: str, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.client = client or broker_redis(settings, socket_timeout=5)
        self._celery: Celery | None = None

    def take_over(self, session: Session, job_id: uuid.UUID) -> TakeOver:
        """For a message that could not claim its job: the dead owner's jobs, now ours or requeued or lost.
        The caller sends the requeued jobs' messages (``resend``) once this transaction commits."""
        owner = session.scalar(select(Job.worker_id).where(Job.id == job_id, Job.status == JobStatus.running))
        if owner is None or owner == self.worker_id:
            return TakeOver()
        owner_alive = self.client.exists(heartbeat_prefix(self.settings) + owner)
        if owner_alive or not heartbeats_settled(self.client, self.settings):
            self._look_again(job_id)
            return TakeOver()
        orphaned = _orphaned_by(Job, owner)
        lost = set(
            session.scalars(
                update(Job)
                .where(*orphaned, Job.attempts >= self.settings.max_attempts)
                .values(
                    status=JobStatus.failed,
                    completed_at=func.now(),
                    error_code="worker_lost",
                    error_message=f"its worker died {self.settings.max_attempts} times while running it",
                )
                .returning(Job.id)
            )
        )
        leader = aliased(Job)
        led_here = exists().where(leader.id == Job.coalesced_with, *_orphaned_by(leader, owner))
        requeued = set(
            session.scalars(
                update(Job)
                .where(*orphaned, Job.coalesced_with.is_not(None), ~led_here)
                .values(status=JobStatus.queued, coalesced_with=None, worker_id=None, started_at=None, progress=0)
                .returning(Job.id)
            )
        )
        taken = session.scalars(
            update(Job)
            .where(*orphaned)
            .values(worker_id=self.worker_id, attempts=Job.attempts + 1, started_at=func.now(), progress=0)
            .returning(Job),
            execution_options={"synchronize_session": False},
        ).all()
        if taken or lost or requeued:
            log.warning(
                "worker %s is gone: took over %d jobs, requeued %d, %d failed as lost",
                owner,
                len(taken),
                len(requeued),
                len(lost),
            )
        return TakeOver(sorted(taken, key=lambda job: job.created_at), lost, requeued)

    def resend(self, job_ids: set[uuid.UUID]) -> None:
        """The messages of requeued jobs (their old ones are held by the dead worker until the visibility
        timeout)."""
        for job_id in job_ids:
            enqueue_job(self._app(), str(job_id))

    def _look_again(self, job_id: uuid.UUID) -> None:
        """The owner looks alive: check again once its heartbeat would have expired if it is dead."""
        self._app().send_task(RUN_JOB_TASK, args=[str(job_id)], countdown=heartbeat_ttl_s(self.settings))

    def _app(self) -> Celery:
        if self._celery is None:
            self._celery = make_celery(self.settings)
        return self._celery


def _orphaned_by(job: Any, owner: str) -> tuple[Any, ...]:
    """The conditions on a row (``Job`` or an alias of it) of a job running under ``owner``."""
    return job.status == JobStatus.running, job.worker_id == owner
