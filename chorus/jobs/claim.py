"""The worker's side of a job's life in Postgres: claim, batch, progress, finish.

Every transition is a conditional UPDATE on ``status``. Broker delivery is
at-least-once, so a redelivered message must find nothing to do: it cannot
claim a job that is running or finished, and a late writer (a worker that
lost a race with a cancel or a reaper) cannot overwrite a terminal state.
Torch-free; callers own the transaction (``session_scope``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from chorus.db.models import Job
from chorus.jobs.coalesce import follow_in_batch, leader_for, try_lock_fingerprint
from chorus.vocab import JobStatus

_RUNNING = {"status": JobStatus.running, "attempts": Job.attempts + 1, "started_at": func.now(), "progress": 0}


def claim(session: Session, job_id: uuid.UUID, worker_id: str) -> Job | None:
    """queued -> running; None if the job is missing or not queued (someone else has it, or it is done).

    A job identical to one running or delivered (chorus.jobs.coalesce) is claimed as that job's follower:
    ``coalesced_with`` is set and it computes nothing."""
    leader = leader_for(session, job_id)
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(**_RUNNING, worker_id=worker_id, coalesced_with=leader)
        .returning(Job)
    )
    return session.scalars(stmt, execution_options={"synchronize_session": False}).one_or_none()


def claim_batch_mates(session: Session, lead: Job, limit: int, worker_id: str) -> list[Job]:
    """Claim up to ``limit`` more queued jobs that can share ``lead``'s batched forward, oldest first.

    SKIP LOCKED lets several workers pull from the same queued set without
    waiting on each other; the mates' own messages later find them claimed.
    Separate statements on purpose: Postgres may evaluate ``UPDATE … WHERE id IN
    (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`` more than once and update
    more than n rows; the locked ids are fixed first instead. A job identical to one running in another
    batch, or delivered, is left to follow that one (checked again once its fingerprint is locked); identical
    jobs within the batch are one row: each follows the first of them (``follow_in_batch``).
    """
    if limit <= 0:
        return []
    twin = aliased(Job)
    led_elsewhere = exists().where(  # running in another batch, or delivered: its own claim follows that one
        and_(
            twin.tenant_id == Job.tenant_id,
            twin.fingerprint == Job.fingerprint,
            or_(
                and_(twin.status == JobStatus.running, twin.coalesced_with.is_(None)),
                twin.status == JobStatus.succeeded,
            ),
            twin.id != lead.id,
        )
    )
    candidates = session.execute(
        select(Job.id, Job.tenant_id, Job.fingerprint)
        .where(Job.status == JobStatus.queued, Job.batch_key == lead.batch_key, Job.id != lead.id, ~led_elsewhere)
        .order_by(Job.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    mate_ids = [job.id for job in candidates if _decided_here(session, lead, job.tenant_id, job.fingerprint)]
    if not mate_ids:
        return []
    # A fresh snapshot, under the fingerprints' locks: an identical job claimed meanwhile elsewhere leads.
    stmt = (
        update(Job).where(Job.id.in_(mate_ids), ~led_elsewhere).values(**_RUNNING, worker_id=worker_id).returning(Job)
    )
    jobs = sorted(session.scalars(stmt, execution_options={"synchronize_session": False}), key=lambda j: j.created_at)
    follow_in_batch([lead, *jobs])
    session.flush()
    return jobs


def _decided_here(session: Session, lead: Job, tenant_id: uuid.UUID, fingerprint: str | None) -> bool:
    """Whether this claim may decide the leader of a mate's fingerprint: its lock is taken without waiting (a
    claim holding it may be waiting for a row this one has locked); one held elsewhere leaves the mate to its
    own message."""
    if fingerprint is None or (tenant_id, fingerprint) == (lead.tenant_id, lead.fingerprint):
        return True  # no leader to decide, or decided already when the lead was claimed (its lock is ours)
    return try_lock_fingerprint(session, tenant_id, fingerprint)


def claim_waiting(session: Session, leader: Job, worker_id: str) -> list[Job]:
    """Claim the queued jobs identical to ``leader`` (same tenant and fingerprint) as its followers: it has
    just delivered, so they are served its video instead of waiting for a worker of their own."""
    if leader.fingerprint is None:
        return []
    stmt = (
        update(Job)
        .where(Job.tenant_id == leader.tenant_id, Job.fingerprint == leader.fingerprint, Job.status == JobStatus.queued)
        .values(**_RUNNING, worker_id=worker_id, coalesced_with=leader.id)
        .returning(Job)
    )
    return list(session.scalars(stmt, execution_options={"synchronize_session": False}))


def report_progress(session: Session, job_ids: Collection[uuid.UUID], progress: int) -> dict[uuid.UUID, bool]:
    """Write progress for the batch in one UPDATE; returns {id: cancel_requested} of jobs still running."""
    stmt = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.running)
        .values(progress=progress)
        .returning(Job.id, Job.cancel_requested)
    )
    return {row.id: row.cancel_requested for row in session.execute(stmt)}


def finish(session: Session, job_ids: Collection[uuid.UUID], status: JobStatus, **values: Any) -> set[uuid.UUID]:
    """running -> a terminal status; returns the ids that were still running (and so were finished here)."""
    if not status.is_terminal:
        raise ValueError(f"{status} is not terminal")
    stmt = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.running)
        .values(status=status, completed_at=func.now(), **values)
        .returning(Job.id)
    )
    return set(session.scalars(stmt))


def fail_stale(session: Session, older_than_s: float) -> set[uuid.UUID]:
    """Fail running jobs whose worker is gone: a live worker stops its jobs at the time limit.

    Called by every task, so a job whose worker was killed (hard time limit,
    OOM, lost machine) ends as ``timeout`` instead of running forever; this
    also covers batch mates whose own messages were already dropped.
    """
    stmt = (
        update(Job)
        .where(Job.status == JobStatus.running, Job.started_at < func.now() - timedelta(seconds=older_than_s))
        .values(
            status=JobStatus.failed,
            completed_at=func.now(),
            error_code="timeout",
            error_message="the job exceeded its time limit or its worker was lost",
        )
        .returning(Job.id)
    )
    return set(session.scalars(stmt))


def job_status(session: Session, job_id: uuid.UUID) -> JobStatus | None:
    """For log lines about messages that claimed nothing."""
    return session.scalar(select(Job.status).where(Job.id == job_id))
