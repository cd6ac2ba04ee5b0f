"""The job API on real uvicorn, Postgres, Redis and S3 (no worker runs: tests move jobs by updating rows)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from chorus.db.models import Job
from chorus.vocab import JobStatus
from tests.fixtures.client import default_video_shape

PROMPT = {"prompt": "a red square moving right"}


def submit(http, tenant, body=PROMPT, **headers):
    return http.post("/v1/jobs", json=body, headers=tenant.headers | headers)


def set_job(db, job_id, **values):
    with db() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(**values))


def test_submit_then_get(http, tenant, db, settings):
    response = submit(http, tenant, {"prompt": "a blue circle", "seed": 7, "metadata": {"user": "u1"}})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["progress"] == 0 and job["output"] is None and job["error"] is None
    # Defaults of the model are filled in and stored.
    assert job["input"] | {"prompt": "a blue circle", "model": "chorus-shapes", "seed": 7} == job["input"]
    assert (job["input"]["num_frames"], job["input"]["height"], job["input"]["width"]) == default_video_shape()
    assert job["input"]["metadata"] == {"user": "u1"} and job["input"]["cache"] == {"mode": "auto"}

    got = http.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    assert got["id"] == job["id"] and got["status"] == "queued" and got["queue_position"] >= 0
    with db() as session:
        row = session.get(Job, uuid.UUID(job["id"]))
        assert row.batch_key == "chorus-shapes/{}x{}x{}/4".format(*default_video_shape()) and row.input == got["input"]

    # A finished job shows its output with a presigned URL, its error-free metrics and no queue position.
    key = f"videos/{tenant.tenant_id}/{job['id']}.mp4"
    output = {"key": key, "width": 32, "height": 32, "num_frames": 8, "fps": 8, "bytes": 1234}
    set_job(
        db,
        job["id"],
        status=JobStatus.succeeded,
        started_at=func.now(),
        completed_at=func.now() + timedelta(seconds=1.5),
        output=output,
        progress=100,
        metrics={"batch_size": 2, "denoise_seconds": 1.25, "cache": {"hit": False}},
    )
    done = http.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    assert done["status"] == "succeeded" and done["queue_position"] is None
    assert (
        done["output"]["video_url"].startswith(settings.s3_endpoint_url) and "Signature" in done["output"]["video_url"]
    )
    assert {k: done["output"][k] for k in ("width", "height", "num_frames", "fps", "bytes")} == {
        k: v for k, v in output.items() if k != "key"
    }
    # Queue and run time come from the timestamps; the rest from the metrics column.
    assert done["metrics"] | {"run_seconds": 1.5, "denoise_seconds": 1.25, "batch_size": 2} == done["metrics"]
    assert done["metrics"]["cache"] == {"hit": False} and done["metrics"]["queue_seconds"] >= 0
    video = http.get(f"/v1/jobs/{job['id']}/video", headers=tenant.headers)
    assert video.status_code == 307 and key in video.headers["location"]


def test_queue_position_counts_jobs_ahead(http, tenant):
    first = submit(http, tenant).json()
    second = submit(http, tenant).json()
    ahead = [http.get(f"/v1/jobs/{j['id']}", headers=tenant.headers).json()["queue_position"] for j in (first, second)]
    assert ahead[1] == ahead[0] + 1


def test_list_paginates_and_filters(http, tenant, db):
    ids = [submit(http, tenant).json()["id"] for _ in range(5)]
    set_job(db, ids[1], status=JobStatus.failed, error_code="model_error", error_message="boom")
    seen, cursor = [], None
    while True:
        page = http.get(
            "/v1/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {}), headers=tenant.headers
        )
        assert page.status_code == 200, page.text
        seen += [job["id"] for job in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest first, each job once
    failed = http.get("/v1/jobs", params={"status": "failed"}, headers=tenant.headers).json()["data"]
    assert [job["id"] for job in failed] == [ids[1]] and failed[0]["error"] == {
        "code": "model_error",
        "message": "boom",
    }
    both = http.get("/v1/jobs", params=[("status", "failed"), ("status", "queued")], headers=tenant.headers).json()
    assert len(both["data"]) == 5
    bad = http.get("/v1/jobs", params={"cursor": "nonsense"}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_idempotency_key(http, tenant, db):
    first = submit(http, tenant, **{"Idempotency-Key": "abc"})
    again = submit(http, tenant, **{"Idempotency-Key": "abc"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = submit(http, tenant, {"prompt": "something else"}, **{"Idempotency-Key": "abc"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    with db() as session:
        assert session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id)) == 1


def test_idempotency_key_under_concurrent_submits(http, tenant, db, api_server):
    import httpx

    results = []

    def post():
        with httpx.Client(base_url=api_server, timeout=30) as client:
            results.append(submit(client, tenant, **{"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in results} == {202} and len({r.json()["id"] for r in results}) == 1
    with db() as session:
        assert session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id)) == 1


def test_tenant_isolation(http, make_tenant):
    alice, bob = make_tenant(), make_tenant()
    job = submit(http, alice).json()
    for method, path in (("GET", ""), ("POST", "/cancel"), ("GET", "/video")):
        response = http.request(method, f"/v1/jobs/{job['id']}{path}", headers=bob.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"
    assert http.get("/v1/jobs", headers=bob.headers).json()["data"] == []
    # The same Idempotency-Key in two tenants names two jobs.
    a = submit(http, alice, **{"Idempotency-Key": "k"}).json()["id"]
    b = submit(http, bob, **{"Idempotency-Key": "k"}).json()["id"]
    assert a != b


def test_cancel(http, tenant, db):
    queued = submit(http, tenant).json()
    canceled = http.post(f"/v1/jobs/{queued['id']}/cancel", headers=tenant.headers)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert canceled.json()["completed_at"] is not None
    again = http.post(f"/v1/jobs/{queued['id']}/cancel", headers=tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"

    running = submit(http, tenant).json()
    set_job(db, running["id"], status=JobStatus.running, started_at=func.now())
    asked = http.post(f"/v1/jobs/{running['id']}/cancel", headers=tenant.headers)
    assert asked.status_code == 202 and asked.json()["status"] == "running" and asked.json()["cancel_requested"]

    missing = http.post(f"/v1/jobs/{uuid.uuid4()}/cancel", headers=tenant.headers)
    assert missing.status_code == 404
    video = http.get(f"/v1/jobs/{running['id']}/video", headers=tenant.headers)
    assert video.status_code == 409 and video.json()["error"]["code"] == "video_not_ready"


def test_prefer_wait_returns_when_the_job_ends(http, tenant, db):
    job = submit(http, tenant).json()
    timer = threading.Timer(0.7, set_job, (db, job["id"]), {"status": JobStatus.failed, "error_code": "x"})
    timer.start()
    started = time.monotonic()
    response = http.get(f"/v1/jobs/{job['id']}", headers=tenant.headers | {"Prefer": "wait=20"})
    elapsed = time.monotonic() - started
    timer.join()
    assert response.status_code == 200 and response.json()["status"] == "failed"
    assert response.headers["preference-applied"] == "wait=20"
    assert 0.6 < elapsed < 5


def test_prefer_wait_times_out(http, tenant):
    started = time.monotonic()
    response = submit(http, tenant, **{"Prefer": "respond-async, wait=1"})
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert response.headers["preference-applied"] == "wait=1" and 0.9 < time.monotonic() - started < 5


def test_prefer_wait_checks_the_key_and_job_first(http, make_tenant):
    alice, bob = make_tenant(), make_tenant()
    job = submit(http, alice).json()
    started = time.monotonic()
    other = http.get(f"/v1/jobs/{job['id']}", headers=bob.headers | {"Prefer": "wait=10"})
    no_key = http.get(f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=10"})
    assert (other.status_code, no_key.status_code) == (404, 401) and time.monotonic() - started < 3
