"""Taking over jobs whose worker died (SIGKILL, OOM, lost node), so a redelivered message completes them.

A message that finds its job ``running`` is either a duplicate (a batch
mate's own message, a redelivery while the owner still works) or the
redelivery of a dead worker's job. The owner's heartbeat in Redis
(``chorus.broker.heartbeats``) tells them apart: while it lives the message is
sent again for a later look (the job may still be orphaned: a killed pool
child's heartbeat outlives it by up to its TTL, and a Redis that restarted less
than a TTL ago has lost live workers' heartbeats too); once it has expired, the dead
worker's running jobs (its whole batch) are claimed afresh, one more attempt
each, and jobs past ``CHORUS_MAX_ATTEMPTS`` fail with ``worker_lost``.
Attempts are counted in Postgres, never in the broker.
"""

from __future__ import annotations

import logging
import uuid

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chorus.broker.app import RUN_JOB_TASK, make_celery
from chorus.broker.client import broker_redis
from chorus.broker.heartbeats import HEARTBEAT_TTL_S, heartbeat_prefix, heartbeats_settled
from chorus.config import Settings
from chorus.db.models import Job
from chorus.vocab import JobStatus

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, settings: Settings, worker_id: str, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.client = client or broker_redis(settings, socket_timeout=5)
        self._celery = None

    def take_over(self, session: Session, job_id: uuid.UUID) -> tuple[list[Job], set[uuid.UUID]]:
        """For a message that could not claim its job: (jobs now ours, oldest first; jobs failed as lost)."""
        owner = session.scalar(select(Job.worker_id).where(Job.id == job_id, Job.status == JobStatus.running))
        if owner is None or owner == self.worker_id:
            return [], set()
        if self.client.exists(heartbeat_prefix(self.settings) + owner) or not heartbeats_settled(self.client):
            self._look_again(job_id)
            return [], set()
        orphaned = (Job.status == JobStatus.running, Job.worker_id == owner)
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
        taken = session.scalars(
            update(Job)
            .where(*orphaned)
            .values(worker_id=self.worker_id, attempts=Job.attempts + 1, started_at=func.now(), progress=0)
            .returning(Job),
            execution_options={"synchronize_session": False},
        ).all()
        if taken or lost:
            log.warning("worker %s is gone: took over %d jobs, %d failed as lost", owner, len(taken), len(lost))
        return sorted(taken, key=lambda job: job.created_at), lost

    def _look_again(self, job_id: uuid.UUID) -> None:
        """The owner looks alive: check again once its heartbeat would have expired if it is dead."""
        if self._celery is None:
            self._celery = make_celery(self.settings)
        self._celery.send_task(RUN_JOB_TASK, args=[str(job_id)], countdown=HEARTBEAT_TTL_S)
