"""Reading and canceling a tenant's jobs. Another tenant's job is simply not found."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from chorus.db.models import CacheEntry, Job
from chorus.errors import Conflict, InvalidInput, NotFound
from chorus.vocab import JobStatus


def get_job(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)).one_or_none()
    if job is None:
        raise NotFound("job_not_found", f"no job {job_id}")
    return job


def queue_positions(session: Session, jobs: Sequence[Job]) -> dict[uuid.UUID, int]:
    """For each queued job: how many jobs (of any tenant) were queued before it, in one query."""
    queued = [job.id for job in jobs if job.status == JobStatus.queued]
    if not queued:
        return {}
    ahead = aliased(Job)
    count = (
        select(func.count())
        .where(ahead.status == JobStatus.queued, tuple_(ahead.created_at, ahead.id) < tuple_(Job.created_at, Job.id))
        .scalar_subquery()
    )
    return dict(session.execute(select(Job.id, count).where(Job.id.in_(queued))).tuples().all())


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("invalid_cursor", "cursor is not one this API returned") from exc


def page_jobs(
    session: Session,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    statuses: Collection[JobStatus] = (),
    newest_first: bool = True,
) -> tuple[list[Job], bool]:
    """One page of the tenant's jobs after the (created_at, id) key ``after``; returns (jobs, more follow)."""
    key = tuple_(Job.created_at, Job.id)
    stmt = select(Job).where(Job.tenant_id == tenant_id)
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    if after is not None:
        stmt = stmt.where(key < tuple_(*after) if newest_first else key > tuple_(*after))
    order = (Job.created_at.desc(), Job.id.desc()) if newest_first else (Job.created_at, Job.id)
    jobs = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    return jobs[:limit], len(jobs) > limit


def list_jobs(
    session: Session,
    tenant_id: uuid.UUID,
    statuses: Collection[JobStatus] = (),
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first; returns a page and the cursor of the next page (None on the last)."""
    after = _decode_cursor(cursor) if cursor else None
    jobs, more = page_jobs(session, tenant_id, limit, after, statuses)
    return jobs, encode_cursor(jobs[-1]) if more else None


def delete_job(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> tuple[Job, list[str]]:
    """Delete an ended job and the cache entries its run left (not committed); returns the job and those
    entries' object prefixes, for the caller to delete from the store after the commit. Conflict while
    the job is queued or running (cancel it first)."""
    job = get_job(session, tenant_id, job_id)
    if not job.status.is_terminal:
        raise Conflict("video_not_finished", f"{job.id} is {job.status}: cancel it before deleting it")
    prefixes = session.scalars(
        delete(CacheEntry).where(CacheEntry.source_job_id == job.id).returning(CacheEntry.object_prefix)
    ).all()
    session.execute(delete(Job).where(Job.id == job.id))
    return job, list(prefixes)


def cancel_job(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> tuple[Job, bool]:
    """Cancel (not committed); returns (job, done): queued jobs end at once (done), running ones are asked
    to stop (the worker checks between denoising steps). Conflict if the job has already ended."""
    mine = (Job.id == job_id, Job.tenant_id == tenant_id)
    canceled = session.scalars(
        update(Job)
        .where(*mine, Job.status == JobStatus.queued)
        .values(status=JobStatus.canceled, cancel_requested=True, completed_at=func.now())
        .returning(Job),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if canceled is not None:
        return canceled, True
    requested = session.scalars(
        update(Job).where(*mine, Job.status == JobStatus.running).values(cancel_requested=True).returning(Job),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if requested is not None:
        return requested, False
    job = get_job(session, tenant_id, job_id)
    raise Conflict("job_finished", f"job {job.id} has already ended ({job.status})")
