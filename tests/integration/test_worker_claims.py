"""The worker's job transitions (chorus.jobs.claim) on real Postgres: conditional claims, SKIP LOCKED batching."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from chorus.db.models import Job
from chorus.db.session import session_factory
from chorus.jobs.claim import claim, claim_batch_mates, fail_stale, finish, report_progress
from chorus.jobs.coalesce import hand_over, lead_or_follow, lock_fingerprint
from chorus.vocab import JobStatus
from tests.fixtures.services import TenantKey


@pytest.fixture
def add_jobs(db, tenant: TenantKey) -> Callable[..., list[uuid.UUID]]:
    """Insert queued jobs one transaction each (so created_at orders them); returns their ids."""

    def add(count: int, batch_key: str, fingerprint: str | None = None) -> list[uuid.UUID]:
        ids = []
        for i in range(count):
            with db() as session:
                job = Job(
                    tenant_id=tenant.tenant_id,
                    model="chorus-shapes",
                    input={"prompt": f"shape {i}", "seed": i},
                    batch_key=batch_key,
                    fingerprint=fingerprint,
                )
                session.add(job)
                session.flush()
                ids.append(job.id)
        return ids

    return add


def statuses(db, ids: list[uuid.UUID]) -> list[JobStatus]:
    with db() as session:
        found = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(ids))).all())
    return [found[i] for i in ids]


def test_a_job_is_claimed_once_and_never_after_it_ends(db, add_jobs) -> None:
    (job_id,) = add_jobs(1, f"key-{uuid.uuid4()}")
    with db() as session:
        job = claim(session, job_id, "worker-a")
        assert (job.status, job.attempts, job.worker_id) == (JobStatus.running, 1, "worker-a")
        assert job.started_at is not None
    with db() as session:
        assert claim(session, job_id, "worker-b") is None  # a redelivered message while it runs
        assert finish(session, [job_id], JobStatus.succeeded) == {job_id}
    with db() as session:
        assert claim(session, job_id, "worker-b") is None  # ... and after it ended
        assert finish(session, [job_id], JobStatus.failed) == set()  # a late writer changes nothing
        assert claim(session, uuid.uuid4(), "worker-b") is None
    assert statuses(db, [job_id]) == [JobStatus.succeeded]


def test_batch_mates_share_the_key_oldest_first_up_to_the_limit(db, add_jobs) -> None:
    key = f"key-{uuid.uuid4()}"
    lead, *same = add_jobs(5, key)
    (other,) = add_jobs(1, f"key-{uuid.uuid4()}")
    with db() as session:
        mates = claim_batch_mates(session, claim(session, lead, "w"), 3, "w")
    assert [mate.id for mate in mates] == same[:3]
    assert all(mate.status == JobStatus.running and mate.attempts == 1 for mate in mates)
    assert statuses(db, [same[3], other]) == [JobStatus.queued, JobStatus.queued]


def test_concurrent_workers_skip_each_others_locked_mates(database_url: str, db, add_jobs) -> None:
    key = f"key-{uuid.uuid4()}"
    lead_a, lead_b, *queued = add_jobs(6, key)
    with db() as session:
        a_lead, b_lead = claim(session, lead_a, "a"), claim(session, lead_b, "b")
    sessions = session_factory(database_url)
    with sessions() as first, sessions() as second:
        taken_by_a = claim_batch_mates(first, a_lead, 2, "a")  # rows locked until `first` commits
        second.execute(text("SET LOCAL lock_timeout = '5s'"))  # without SKIP LOCKED this would wait, then fail
        taken_by_b = claim_batch_mates(second, b_lead, 10, "b")
        second.commit()
        first.commit()
    assert [job.id for job in taken_by_a] == queued[:2]
    assert [job.id for job in taken_by_b] == queued[2:]


def test_progress_reports_cancels_and_skips_ended_jobs(db, add_jobs) -> None:
    keep, cancel, gone = add_jobs(3, f"key-{uuid.uuid4()}")
    with db() as session:
        for job_id in (keep, cancel, gone):
            claim(session, job_id, "w")
        session.execute(update(Job).where(Job.id == cancel).values(cancel_requested=True))
        finish(session, [gone], JobStatus.failed)
    with db() as session:
        assert report_progress(session, [keep, cancel, gone], 40) == {keep: False, cancel: True}
    with db() as session:
        progress = dict(session.execute(select(Job.id, Job.progress).where(Job.id.in_([keep, gone]))).all())
    assert progress == {keep: 40, gone: 0}


def test_running_jobs_past_the_time_limit_are_failed_as_orphans(db, add_jobs) -> None:
    orphan, alive = add_jobs(2, f"key-{uuid.uuid4()}")
    with db() as session:
        claim(session, orphan, "dead-worker")
        claim(session, alive, "live-worker")
        session.execute(update(Job).where(Job.id == orphan).values(started_at=func.now() - timedelta(hours=1)))
    with db() as session:
        assert orphan in fail_stale(session, 600)
    with db() as session:
        job = session.get(Job, orphan)
        assert (job.status, job.error_code, job.completed_at is not None) == (JobStatus.failed, "timeout", True)
    assert statuses(db, [alive]) == [JobStatus.running]


def test_a_job_identical_to_a_running_one_follows_it_and_is_no_batch_mate_elsewhere(db, add_jobs) -> None:
    fingerprint, key = uuid.uuid4().hex, f"key-{uuid.uuid4()}"
    leader_id, follower_id = add_jobs(2, key, fingerprint)
    (other_lead,) = add_jobs(1, key)
    with db() as session:
        leader = claim(session, leader_id, "a")
        assert leader.coalesced_with is None  # nobody ran it before: it leads
    with db() as session:  # another worker's batch of the same shape leaves the identical job alone
        assert claim_batch_mates(session, claim(session, other_lead, "b"), 5, "b") == []
    with db() as session:
        follower = claim(session, follower_id, "c")
        assert (follower.status, follower.coalesced_with) == (JobStatus.running, leader_id)


def test_a_job_identical_to_delivered_ones_follows_the_one_that_ran(db, add_jobs) -> None:
    """The second job follows the delivered first; the third follows the first too, not the second's copy."""
    fingerprint, key = uuid.uuid4().hex, f"key-{uuid.uuid4()}"
    ran, copy, repeat = add_jobs(3, key, fingerprint)
    for job_id in (ran, copy):
        with db() as session:
            claim(session, job_id, "a")
            finish(session, [job_id], JobStatus.succeeded)
    with db() as session:
        assert session.get(Job, copy).coalesced_with == ran
        assert claim(session, repeat, "b").coalesced_with == ran


def test_identical_jobs_claimed_together_are_one_row_computed_by_its_first(db, add_jobs) -> None:
    """Each identical mate follows the first of its fingerprint in the batch, so another worker's identical
    job follows the one job that computes, never a mate."""
    same, other, key = uuid.uuid4().hex, uuid.uuid4().hex, f"key-{uuid.uuid4()}"
    lead, same_as_lead = add_jobs(2, key, same)
    first_other, second_other = add_jobs(2, key, other)
    (elsewhere,) = add_jobs(1, f"key-{uuid.uuid4()}", same)
    with db() as session:
        mates = claim_batch_mates(session, claim(session, lead, "a"), 5, "a")
    with db() as session:
        rows = dict(session.execute(select(Job.id, Job.coalesced_with).where(Job.id.in_(m.id for m in mates))).all())
    assert rows == {same_as_lead: lead, first_other: None, second_other: first_other}
    with db() as session:
        assert claim(session, elsewhere, "b").coalesced_with == lead


def test_a_mate_whose_fingerprint_another_claim_is_deciding_is_left_to_that_claim(
    database_url: str, db, add_jobs, tenant: TenantKey
) -> None:
    fingerprint, key = uuid.uuid4().hex, f"key-{uuid.uuid4()}"
    (lead,) = add_jobs(1, key)
    (contested,) = add_jobs(1, key, fingerprint)
    with session_factory(database_url)() as deciding:
        lock_fingerprint(deciding, tenant.tenant_id, fingerprint)  # a claim of an identical job, not committed
        with db() as session:
            assert claim_batch_mates(session, claim(session, lead, "a"), 5, "a") == []  # without waiting
        deciding.commit()
    assert statuses(db, [contested]) == [JobStatus.queued]


def test_a_row_whose_leader_is_canceled_is_led_by_its_next_job(db, add_jobs) -> None:
    fingerprint, key = uuid.uuid4().hex, f"key-{uuid.uuid4()}"
    lead, second, third = add_jobs(3, key, fingerprint)
    (late,) = add_jobs(1, f"key-{uuid.uuid4()}", fingerprint)
    with db() as session:
        mates = claim_batch_mates(session, claim(session, lead, "a"), 5, "a")
    with db() as session:
        finish(session, [lead], JobStatus.canceled)
        hand_over(session, mates)
    with db() as session:
        rows = dict(session.execute(select(Job.id, Job.coalesced_with).where(Job.id.in_([second, third]))).all())
        assert rows == {second: None, third: second}
        assert claim(session, late, "b").coalesced_with == second


def test_of_two_orphaned_followers_one_leads_and_the_other_follows_it(db, add_jobs) -> None:
    fingerprint = uuid.uuid4().hex
    leader_id, first_id, second_id = add_jobs(3, f"key-{uuid.uuid4()}", fingerprint)
    with db() as session:
        claim(session, leader_id, "a")
    with db() as session:
        first, second = claim(session, first_id, "b"), claim(session, second_id, "c")
    with db() as session:
        finish(session, [leader_id], JobStatus.canceled)
    with db() as session:
        assert lead_or_follow(session, first) is None
    with db() as session:
        assert lead_or_follow(session, second) == first_id
    with db() as session:
        rows = dict(session.execute(select(Job.id, Job.coalesced_with).where(Job.id.in_([first_id, second_id]))).all())
    assert rows == {first_id: None, second_id: first_id}
