"""The lost-message sweep (chorus.jobs.requeue) on real Postgres and Redis, with messages Celery itself sent."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from functools import partial

import pytest
import redis
from sqlalchemy import update

from chorus.broker.app import enqueue_job, make_celery
from chorus.broker.client import broker_redis
from chorus.broker.heartbeats import heartbeat_prefix
from chorus.broker.held import UNACKED_HASH, held_messages
from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.requeue import sweep, unsent_jobs
from chorus.vocab import JobStatus
from tests.fixtures.services import TenantKey


@pytest.fixture
def own_queue(settings: Settings) -> Iterator[Settings]:
    """Settings on a queue of this test only (its lists are removed afterwards)."""
    mine = settings.model_copy(update={"queue_name": f"requeue-{secrets.token_hex(4)}"})
    yield mine
    client = broker_redis(mine)
    for name in client.scan_iter(match=f"{mine.queue_name}*"):
        client.delete(name)
    client.close()


@pytest.fixture
def client(own_queue: Settings) -> Iterator[redis.Redis]:
    client = broker_redis(own_queue)
    yield client
    client.close()


def add_job(db, tenant: TenantKey, status: JobStatus = JobStatus.queued, worker_id: str | None = None) -> uuid.UUID:
    with db() as session:
        job = Job(tenant_id=tenant.tenant_id, model="chorus-shapes", input={"prompt": "x"}, batch_key="requeue-test")
        session.add(job)
        session.flush()
        session.execute(update(Job).where(Job.id == job.id).values(status=status, worker_id=worker_id))
        return job.id


@pytest.fixture
def take(client: redis.Redis, own_queue: Settings) -> Iterator[Callable[[], None]]:
    """Does what a worker does when it takes the oldest message: moves it to kombu's unacked hash
    as [message, exchange, routing key]. The hash is shared, so only this test's fields are removed."""
    tags: list[str] = []

    def take_oldest() -> None:
        raw = client.rpop(own_queue.queue_name)
        tags.append(f"test-{secrets.token_hex(4)}")
        client.hset(UNACKED_HASH, tags[-1], json.dumps([json.loads(raw), "", own_queue.queue_name]))

    yield take_oldest
    if tags:
        client.hdel(UNACKED_HASH, *tags)


def test_held_ids_come_from_the_queue_and_from_unacked_messages(
    own_queue: Settings, client: redis.Redis, take: Callable[[], None]
) -> None:
    waiting, taken = str(uuid.uuid4()), str(uuid.uuid4())
    celery = make_celery(own_queue)
    enqueue_job(celery, taken)
    enqueue_job(celery, waiting)
    celery.close()
    take()
    held = held_messages(client, own_queue.queue_name)
    assert waiting in held.waiting and taken in held.taken


def test_jobs_without_a_message_are_found_and_sent_once_per_interval(
    db, tenant: TenantKey, own_queue: Settings, client: redis.Redis, take: Callable[[], None]
) -> None:
    now = own_queue.model_copy(update={"requeue_after_s": 0.0})
    celery = make_celery(now)
    client.set(heartbeat_prefix(now) + "alive-worker", 1, ex=60)
    taken = add_job(db, tenant)  # a worker took its message and has not claimed it yet
    # A dead worker's message stays taken until the visibility timeout: it does not count.
    dead_taken = add_job(db, tenant, JobStatus.running, worker_id="dead-worker")
    for job_id in (taken, dead_taken):
        enqueue_job(celery, str(job_id))
        take()
    sent = add_job(db, tenant)
    enqueue_job(celery, str(sent))
    lost = add_job(db, tenant)
    busy = add_job(db, tenant, JobStatus.running, worker_id="alive-worker")
    orphaned = add_job(db, tenant, JobStatus.running, worker_id="dead-worker")
    ended = add_job(db, tenant, JobStatus.succeeded, worker_id="dead-worker")

    with db() as session:
        unsent = set(unsent_jobs(session, client, now, grace_s=0))
    assert {lost, orphaned, dead_taken} <= unsent and not {taken, sent, busy, ended} & unsent

    with db() as session:
        first = sweep(session, client, now, partial(enqueue_job, celery), interval_s=60)
        second = sweep(session, client, now, partial(enqueue_job, celery), interval_s=60)  # another API, same tick
    assert {lost, orphaned, dead_taken} <= set(first) and second == []
    with db() as session:  # once re-sent, they hold a message again
        assert not {lost, orphaned, dead_taken} & set(unsent_jobs(session, client, now, grace_s=0))
    celery.close()


def test_young_jobs_are_left_alone(db, tenant: TenantKey, own_queue: Settings, client: redis.Redis) -> None:
    young = add_job(db, tenant)  # its submit may still be between commit and enqueue
    with db() as session:
        assert young not in unsent_jobs(session, client, own_queue, grace_s=60)
