"""Explicit remix end to end over HTTP: ``remix_of`` names the source job, the worker reuses that job's
cache entry by the plan for the prompts' difference (no similarity lookup), another tenant's job is a
404, and a source whose entry left the cache runs in full and says so."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import delete, select

from chorus.db.models import CacheEntry
from tests.fixtures.client import finished, poll, submit
from tests.fixtures.services import TenantKey
from tests.fixtures.worker import WorkerProcess

STEPS = 4


def succeeded(http: httpx.Client, tenant: TenantKey, **body) -> dict:
    job = finished(http, tenant, submit(http, tenant, **body)["id"])
    assert job["status"] == "succeeded", job
    return job


def entry_ids(db, job: dict) -> list[uuid.UUID]:
    with db() as session:
        return list(session.scalars(select(CacheEntry.id).where(CacheEntry.source_job_id == uuid.UUID(job["id"]))))


def test_remix_reuses_the_named_job_and_refuses_another_tenants(
    http: httpx.Client, make_tenant, db, celery_worker: WorkerProcess
) -> None:
    tenant, other = make_tenant(), make_tenant()
    source = succeeded(http, tenant, prompt="a red square moving right", seed=1)
    poll(lambda: entry_ids(db, source), bool)  # admitted after the job succeeded

    remix = succeeded(http, tenant, prompt="a red square moving right", seed=2, remix_of=source["id"])
    cache = remix["metrics"]["cache"]
    assert cache["reason"].startswith("remix: ") and cache["source_job_id"] == source["id"], cache
    assert remix["input"]["remix_of"] == source["id"]

    refused = http.post(
        "/v1/jobs", json={"prompt": "a red square moving left", "remix_of": source["id"]}, headers=other.headers
    )
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "remix_source_not_found", refused.text

    with db() as session:  # the source's entry is evicted
        session.execute(delete(CacheEntry).where(CacheEntry.source_job_id == uuid.UUID(source["id"])))
    gone = succeeded(http, tenant, prompt="a red square moving left", seed=3, remix_of=source["id"])
    assert gone["metrics"]["cache"]["reason"] == "miss: the remixed job's run is not in the cache"
    assert gone["metrics"]["cache"]["hit"] is False and gone["metrics"]["forwards"] == STEPS
