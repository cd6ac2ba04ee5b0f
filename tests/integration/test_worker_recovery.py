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
        took = Recovery(settings, "me:1").take_over(session, mate)
    assert [job.id for job in took.taken] == [lead, mate] and not took.lost and not took.requeued
    with db() as session:
        rows = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_([lead, mate, other])))}
    assert {rows[i].worker_id for i in (lead, mate)} == {"me:1"} and rows[other].worker_id == "someone-else:1"
    assert rows[lead].attempts == rows[mate].attempts == 2 and rows[lead].status == JobStatus.running


def test_past_max_attempts_a_job_fails_as_worker_lost(db, settings: Settings, running_batch) -> None:
    (lead, mate, _), _ = running_batch
    with db() as session:
        session.execute(update(Job).where(Job.id == lead).values(attempts=settings.max_attempts))
    with db() as session:
        took = Recovery(settings, "me:1").take_over(session, lead)
    assert [job.id for job in took.taken] == [mate] and took.lost == {lead}
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
            took = Recovery(settings, "me:1", client).take_over(session, lead)
        assert not took.taken and not took.lost
        assert client.llen(settings.queue_name) == before + 1  # the look-again message
    finally:
        client.delete(heartbeat_prefix(settings) + dead)
        client.lpop(settings.queue_name)  # kombu LPUSHes: the newest is leftmost
        client.close()


@pytest.mark.parametrize("leader_lost", [False, True])
def test_followers_stay_in_a_taken_row_and_followers_of_any_other_job_are_requeued(
    db, settings: Settings, tenant: TenantKey, redis_url: str, leader_lost: bool
) -> None:
    """A dead worker's row (leader and identical mate), and a follower it held of a job running elsewhere:
    the row is taken over whole (or, its leader lost, the mate is requeued); the follower goes back to the
    queue with its own message, to follow or lead afresh when claimed."""
    dead, row_print, other_print = f"gone-host:{uuid.uuid4().hex[:6]}", uuid.uuid4().hex, uuid.uuid4().hex
    leader_attempts = settings.max_attempts if leader_lost else 1

    def add(session, fingerprint: str, owner: str, follows: uuid.UUID | None = None, attempts: int = 1) -> uuid.UUID:
        job = Job(
            tenant_id=tenant.tenant_id,
            model="chorus-shapes",
            input={"prompt": fingerprint},
            batch_key="k",
            fingerprint=fingerprint,
            status=JobStatus.running,
            worker_id=owner,
            attempts=attempts,
            coalesced_with=follows,
        )
        session.add(job)
        session.flush()
        return job.id

    with db() as session:
        leader = add(session, row_print, dead, attempts=leader_attempts)
        mate = add(session, row_print, dead, follows=leader)
        elsewhere = add(session, other_print, "someone-else:1")
        follower = add(session, other_print, dead, follows=elsewhere)
    client = redis.Redis.from_url(redis_url)
    recovery = Recovery(settings, "me:1", client)
    with db() as session:
        took = recovery.take_over(session, follower)
    if leader_lost:
        assert (took.taken, took.lost, took.requeued) == ([], {leader}, {mate, follower})
    else:
        assert ([job.id for job in took.taken], took.lost, took.requeued) == ([leader, mate], set(), {follower})
    with db() as session:
        for job_id in took.requeued:
            job = session.get(Job, job_id)
            assert (job.status, job.coalesced_with, job.worker_id) == (JobStatus.queued, None, None)
    before = client.llen(settings.queue_name)
    try:
        recovery.resend(took.requeued)
        assert client.llen(settings.queue_name) == before + len(took.requeued)
    finally:
        for _ in took.requeued:
            client.lpop(settings.queue_name)
        client.close()
