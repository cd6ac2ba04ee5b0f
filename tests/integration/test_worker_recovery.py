"""Taking over a dead worker's jobs (chorus.jobs.recovery) on real Postgres and Redis."""

from __future__ import annotations

import uuid

import pytest
import redis
from sqlalchemy import select, update

from chorus.broker.heartbeats import heartbeat_prefix
from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.claim import claim
from chorus.jobs.recovery import Recovery
from chorus.vocab import JobStatus
from tests.fixtures.services import TenantKey


@pytest.fixture
def running_batch(db, tenant: TenantKey) -> tuple[list[uuid.UUID], str]:
    """Two jobs claimed by a worker that then died (no heartbeat), plus an unrelated running job."""
    dead = f"gone-host:{uuid.uuid4().hex[:6]}"
    ids = []
    for i, owner in enumerate((dead, dead, "someone-else:1")):
        with db() as session:
            job = Job(tenant_id=tenant.tenant_id, model="chorus-shapes", input={"prompt": f"p{i}"}, batch_key="k")
            session.add(job)
            session.flush()
            ids.append(job.id)
            claim(session, job.id, owner)
    return ids, dead


def test_a_dead_workers_batch_is_taken_over_with_one_more_attempt(db, settings: Settings, running_batch) -> None:
    (lead, mate, other), _ = running_batch
    with db() as session:
        taken, lost = Recovery(settings, "me:1").take_over(session, mate)
    assert [job.id for job in taken] == [lead, mate] and not lost
    with db() as session:
        rows = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_([lead, mate, other])))}
    assert {rows[i].worker_id for i in (lead, mate)} == {"me:1"} and rows[other].worker_id == "someone-else:1"
    assert rows[lead].attempts == rows[mate].attempts == 2 and rows[lead].status == JobStatus.running


def test_past_max_attempts_a_job_fails_as_worker_lost(db, settings: Settings, running_batch) -> None:
    (lead, mate, _), _ = running_batch
    with db() as session:
        session.execute(update(Job).where(Job.id == lead).values(attempts=settings.max_attempts))
    with db() as session:
        taken, lost = Recovery(settings, "me:1").take_over(session, lead)
    assert [job.id for job in taken] == [mate] and lost == {lead}
    with db() as session:
        assert session.get(Job, lead).error_code == "worker_lost"


def test_a_live_owner_keeps_its_job_and_the_message_is_checked_again_later(
    db, settings: Settings, running_batch, redis_url: str
) -> None:
    (lead, _, _), dead = running_batch
    client = redis.Redis.from_url(redis_url)
    client.set(heartbeat_prefix(settings) + dead, 1, ex=30)  # it is alive after all
    before = client.llen(settings.queue_name)
    try:
        with db() as session:
            taken, lost = Recovery(settings, "me:1", client).take_over(session, lead)
        assert not taken and not lost
        assert client.llen(settings.queue_name) == before + 1  # the look-again message
    finally:
        client.delete(heartbeat_prefix(settings) + dead)
        client.lpop(settings.queue_name)  # kombu LPUSHes: the newest is leftmost
        client.close()
