"""A job's whole life on real services: HTTP submit -> Redis -> ``celery worker`` -> MP4 in (moto) S3."""

from __future__ import annotations

import uuid

import httpx
import imageio.v3 as iio
import pytest
from sqlalchemy import select

from chorus.broker.app import enqueue_job, make_celery
from chorus.db.models import Job
from tests.fixtures.client import default_video_shape, finished, submit, wait_until
from tests.fixtures.services import TenantKey
from tests.fixtures.worker import WorkerProcess, wait_for_messages_consumed

pytestmark = pytest.mark.usefixtures("celery_worker")


def rows(db, ids: list[str]) -> dict[str, Job]:
    with db() as session:
        return {str(job.id): job for job in session.scalars(select(Job).where(Job.id.in_(ids)))}


def test_submitted_job_ends_with_a_playable_mp4(http: httpx.Client, tenant: TenantKey) -> None:
    job = finished(http, tenant, submit(http, tenant, seed=7)["id"])

    assert job["status"] == "succeeded", job
    assert job["progress"] == 100
    output = job["output"]
    assert (output["num_frames"], output["height"], output["width"], output["fps"]) == (*default_video_shape(), 8)
    video = httpx.get(output["video_url"], timeout=30)  # presigned by moto, fetched without our API key
    assert video.status_code == 200
    assert len(video.content) == output["bytes"]
    meta = iio.immeta(video.content, plugin="FFMPEG", extension=".mp4")
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    frames = iio.imread(video.content, plugin="FFMPEG", extension=".mp4")
    assert frames.shape == (*default_video_shape(), 3)
    metrics = job["metrics"]
    assert metrics["queue_seconds"] >= 0 and metrics["run_seconds"] > 0 and metrics["denoise_seconds"] > 0


def test_compatible_jobs_share_batched_forwards(
    http: httpx.Client, tenant: TenantKey, celery_worker: WorkerProcess, db
) -> None:
    steps, count = 5, 3  # 5 steps: a shape no other test queues, so no stranger joins the batch
    celery_worker.pause()
    try:
        ids = [submit(http, tenant, num_inference_steps=steps, seed=i)["id"] for i in range(count)]
    finally:
        celery_worker.resume()
    jobs = [finished(http, tenant, job_id) for job_id in ids]

    assert [job["status"] for job in jobs] == ["succeeded"] * count
    assert [job["metrics"]["batch_size"] for job in jobs] == [count] * count
    recorded = rows(db, ids)
    batches = {job.metrics["batch_id"]: job.metrics["forwards"] for job in recorded.values()}
    assert len(batches) == 1
    assert sum(batches.values()) == steps < count * steps  # one forward per step served all three


def test_cancel_in_a_batch_stops_that_job_between_steps_and_not_the_others(
    http: httpx.Client, tenant: TenantKey, celery_worker: WorkerProcess
) -> None:
    steps = 12  # long enough to cancel mid-run, short enough for a loaded 2-core machine
    celery_worker.pause()
    try:
        doomed, kept = (submit(http, tenant, num_inference_steps=steps, seed=i)["id"] for i in range(2))
    finally:
        celery_worker.resume()
    wait_until(http, tenant, doomed, lambda job: job["status"] == "running" and job["progress"] > 0)

    response = http.post(f"/v1/jobs/{doomed}/cancel", headers=tenant.headers)
    assert response.status_code == 202, response.text
    canceled = finished(http, tenant, doomed)
    assert canceled["status"] == "canceled"
    assert 0 < canceled["progress"] < 100 and canceled["output"] is None

    survivor = finished(http, tenant, kept)
    assert survivor["status"] == "succeeded" and survivor["metrics"]["batch_size"] == 2
    assert survivor["completed_at"] > canceled["completed_at"]


def test_cancel_of_a_running_job_ends_it_early(
    http: httpx.Client, tenant: TenantKey, celery_worker: WorkerProcess
) -> None:
    job_id = submit(http, tenant, num_inference_steps=40)["id"]
    wait_until(http, tenant, job_id, lambda job: job["status"] == "running" and job["progress"] > 0)

    assert http.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers).status_code == 202
    job = finished(http, tenant, job_id)
    assert job["status"] == "canceled" and job["progress"] < 100 and job["output"] is None
    assert f"canceled between steps: {job_id}" in celery_worker.log()  # logged before the status was written


def test_redelivered_message_for_a_finished_job_does_nothing(
    http: httpx.Client, tenant: TenantKey, celery_worker: WorkerProcess, settings, db
) -> None:
    job_id = submit(http, tenant)["id"]
    assert finished(http, tenant, job_id)["status"] == "succeeded"
    before = rows(db, [job_id])[job_id]
    missing = str(uuid.uuid4())

    app = make_celery(settings)
    try:
        enqueue_job(app, job_id)  # what the broker does after a lost ack
        enqueue_job(app, missing)
    finally:
        app.close()
    wait_for_messages_consumed(settings, [job_id, missing])

    after = rows(db, [job_id])[job_id]
    assert (after.status, after.attempts, after.completed_at, after.output, after.metrics) == (
        before.status,
        1,
        before.completed_at,
        before.output,
        before.metrics,
    )
