"""The worker's failure paths, run in-process on real Postgres, the real model and moto S3 over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.schemas import JobInput
from chorus.jobs.submit import resolve_input
from chorus.storage import open_store
from chorus.vocab import JobStatus
from tests.fixtures.services import TenantKey
from worker.runner import JobRunner


def add_job(db, tenant: TenantKey, settings: Settings, model: str, gen: dict[str, Any], **columns: Any) -> Job:
    """Insert a queued job, its input stored as the API stores it."""
    stored = resolve_input(JobInput(prompt="a blue circle moving left", seed=3, **gen), settings)
    with db() as session:
        job = Job(
            tenant_id=tenant.tenant_id,
            model=model,
            input=stored.model_dump(mode="json") | {"model": model},
            **columns,
        )
        session.add(job)
    return job


def run_job(db, tenant: TenantKey, settings: Settings, model: str = "chorus-shapes", **gen: Any) -> Job:
    """Insert a queued job, run its task to the end in this process, return the row."""
    job = add_job(db, tenant, settings, model, gen, batch_key=f"runner-test-{uuid.uuid4()}")
    JobRunner(settings, open_store(settings), "test-runner").run(str(job.id))
    with db() as session:
        return session.get(Job, job.id)


def test_a_job_over_its_time_limit_fails_with_timeout(db, tenant: TenantKey, settings: Settings) -> None:
    limited = settings.model_copy(update={"job_time_limit_s": 1})
    # 128x128 and 100 steps take seconds even on a fast CPU.
    job = run_job(db, tenant, limited, height=128, width=128, num_inference_steps=100)
    assert (job.status, job.error_code, job.output) == (JobStatus.failed, "timeout", None)
    assert job.progress < 100 and job.metrics["batch_size"] == 1


def test_an_unknown_model_fails_with_model_error(db, tenant: TenantKey, settings: Settings) -> None:
    job = run_job(db, tenant, settings, model="no-such-model")
    assert (job.status, job.error_code) == (JobStatus.failed, "model_error")
    assert "no-such-model" in job.error_message


def test_a_failed_upload_fails_the_job_and_leaves_no_output(db, tenant: TenantKey, settings: Settings) -> None:
    missing_bucket = settings.model_copy(update={"store_url": f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/videos"})
    job = run_job(db, tenant, missing_bucket)
    assert (job.status, job.error_code, job.output) == (JobStatus.failed, "upload_failed", None)
    assert job.metrics["forwards"] == 4  # it was denoised; only the upload failed


def test_a_follower_whose_leader_never_ends_fails_at_its_own_time_limit(
    db, tenant: TenantKey, settings: Settings
) -> None:
    """A leader stuck running (its worker hung): the follower waits no longer than its own time limit."""
    fingerprint = uuid.uuid4().hex
    same = {"tenant_id": tenant.tenant_id, "model": "chorus-shapes", "input": {"prompt": "x", "seed": 1}}
    with db() as session:
        leader = Job(**same, batch_key="a", fingerprint=fingerprint, status=JobStatus.running)
        follower = Job(**same, batch_key="b", fingerprint=fingerprint)
        session.add_all([leader, follower])
    limited = settings.model_copy(update={"job_time_limit_s": 2})
    JobRunner(limited, open_store(settings), "test-runner").run(str(follower.id))
    with db() as session:
        ended = session.get(Job, follower.id)
        assert (ended.status, ended.error_code, ended.coalesced_with) == (JobStatus.failed, "timeout", leader.id)
        session.delete(session.get(Job, leader.id))


def test_an_identical_mate_whose_leader_is_canceled_leads_the_row_and_computes(
    db, tenant: TenantKey, settings: Settings
) -> None:
    """Two identical jobs claimed into one batch are one row; the leader canceled at the first step, its mate
    is the row's leader from then on: it computed, and follows nobody."""
    same = {"batch_key": f"runner-test-{uuid.uuid4()}", "fingerprint": uuid.uuid4().hex}
    leader = add_job(db, tenant, settings, "chorus-shapes", {}, **same, cancel_requested=True)
    mate = add_job(db, tenant, settings, "chorus-shapes", {}, **same)
    JobRunner(settings, open_store(settings), "test-runner").run(str(leader.id))
    with db() as session:
        ended, delivered = session.get(Job, leader.id), session.get(Job, mate.id)
        assert ended.status == JobStatus.canceled
        assert (delivered.status, delivered.coalesced_with) == (JobStatus.succeeded, None)
        assert delivered.metrics["forwards"] == 4 and delivered.metrics["cache"].get("served") != "coalesced"
