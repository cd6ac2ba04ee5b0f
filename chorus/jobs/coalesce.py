"""Identical jobs run once: the leader of a fingerprint is decided in Postgres at claim time.

A job with a fingerprint (``chorus.fingerprint``) that is claimed while a job of the same tenant and
fingerprint is running (and computing, not itself following) becomes that leader's follower: it is
``running`` with ``coalesced_with`` naming the leader, computes nothing, and is served the leader's
video once the leader succeeds. Where none is running but one was delivered, the newest delivered one
is followed the same way: a repeat is a copy of that video (whatever served that job: the cache's hits
are no entries of their own, so the cache could not find their videos). Identical jobs claimed together
(batch mates) are one row of the batch's forward: each follows the first of them (``follow_in_batch``),
so of any set of identical jobs exactly one computes, and a job that leaves its row early hands the row
to the next (``hand_over``). Every decision takes a transaction-scoped advisory lock on (tenant,
fingerprint), so two workers claiming identical jobs at once cannot both lead; the lock is released at
commit.
Torch-free; callers own the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chorus.db.models import Job
from chorus.vocab import JobStatus


def _lock_key(tenant_id: uuid.UUID, fingerprint: str) -> Any:
    return func.hashtextextended(f"{tenant_id}/{fingerprint}", 0)


def lock_fingerprint(session: Session, tenant_id: uuid.UUID, fingerprint: str) -> None:
    """Serialise leader decisions for one (tenant, fingerprint) until the transaction ends."""
    session.execute(select(func.pg_advisory_xact_lock(_lock_key(tenant_id, fingerprint))))


def try_lock_fingerprint(session: Session, tenant_id: uuid.UUID, fingerprint: str) -> bool:
    """``lock_fingerprint`` without waiting: False when another transaction is deciding that fingerprint."""
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(tenant_id, fingerprint)))))


def running_leader(session: Session, tenant_id: uuid.UUID, fingerprint: str, besides: uuid.UUID) -> uuid.UUID | None:
    """The running job of this tenant and fingerprint that computes (follows nobody), other than ``besides``."""
    return session.scalar(
        select(Job.id)
        .where(
            Job.tenant_id == tenant_id,
            Job.fingerprint == fingerprint,
            Job.status == JobStatus.running,
            Job.coalesced_with.is_(None),
            Job.id != besides,
        )
        .order_by(Job.started_at)
        .limit(1)
    )


def delivered_twin(session: Session, tenant_id: uuid.UUID, fingerprint: str) -> uuid.UUID | None:
    """The newest succeeded job of this tenant and fingerprint: its video is a repeat's. A job that made its
    video is preferred to one served a copy, so ``coalesced_with`` names the run however late a repeat comes."""
    return session.scalar(
        select(Job.id)
        .where(Job.tenant_id == tenant_id, Job.fingerprint == fingerprint, Job.status == JobStatus.succeeded)
        .order_by(Job.coalesced_with.is_(None).desc(), Job.completed_at.desc())
        .limit(1)
    )


def leader_for(session: Session, job_id: uuid.UUID) -> uuid.UUID | None:
    """Lock the queued job's fingerprint and return the job it must follow, if any (None: it leads): a
    running leader, else a delivered twin."""
    row = session.execute(
        select(Job.tenant_id, Job.fingerprint).where(Job.id == job_id, Job.status == JobStatus.queued)
    ).one_or_none()
    if row is None or row.fingerprint is None:
        return None
    lock_fingerprint(session, row.tenant_id, row.fingerprint)
    leader = running_leader(session, row.tenant_id, row.fingerprint, job_id)
    return leader or delivered_twin(session, row.tenant_id, row.fingerprint)


def follow_in_batch(jobs: list[Job]) -> None:
    """Identical jobs claimed into one batch, in batch order: each follows the first of its (tenant,
    fingerprint), which computes their one row. Sets ``coalesced_with`` on the rows; the caller flushes."""
    firsts: dict[tuple[uuid.UUID, str], Job] = {}
    for job in jobs:
        if job.fingerprint is not None:
            first = firsts.setdefault((job.tenant_id, job.fingerprint), job)
            job.coalesced_with = None if first is job else first.id


def hand_over(session: Session, row: list[Job]) -> None:
    """The job computing a row (identical jobs of one batch) left it without a video (canceled, its upload
    failed): ``row``'s first job, of those still in it, leads it from now on and the rest follow that one.
    Followers elsewhere of the job that left find the new leader through ``lead_or_follow``."""
    leader = row[0]
    lock_fingerprint(session, leader.tenant_id, leader.fingerprint)
    for job in row:
        job.coalesced_with = None if job is leader else leader.id
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.running)
            .values(coalesced_with=job.coalesced_with)
        )


@dataclass(frozen=True)
class LeaderState:
    """What a waiting follower reads each poll: its leader's state and its own."""

    leader_status: JobStatus
    leader_output: dict[str, Any] | None
    leader_progress: int
    own_status: JobStatus
    cancel_requested: bool


def leader_state(session: Session, follower: Job) -> LeaderState:
    leader = session.execute(
        select(Job.status, Job.output, Job.progress).where(Job.id == follower.coalesced_with)
    ).one_or_none()
    own = session.execute(select(Job.status, Job.cancel_requested).where(Job.id == follower.id)).one()
    if leader is None:  # deleted with its tenant: as good as failed
        return LeaderState(JobStatus.failed, None, 0, own.status, own.cancel_requested)
    return LeaderState(leader.status, leader.output, leader.progress, own.status, own.cancel_requested)


def lead_or_follow(session: Session, follower: Job) -> uuid.UUID | None:
    """The follower's leader ended without a video: follow the job that leads now, or lead (None).

    Under the fingerprint's lock, so of several orphaned followers exactly one becomes the leader and
    the others follow it."""
    lock_fingerprint(session, follower.tenant_id, follower.fingerprint)
    leader = running_leader(session, follower.tenant_id, follower.fingerprint, follower.id)
    # Its started_at stays: a follower's time limit counts from its own claim, waiting included.
    session.execute(
        update(Job).where(Job.id == follower.id, Job.status == JobStatus.running).values(coalesced_with=leader)
    )
    follower.coalesced_with = leader
    return leader
