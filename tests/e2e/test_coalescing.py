"""Identical jobs in flight run once, on real services: API, two ``celery worker`` processes, the webhook
worker, Redis, Postgres, moto S3 and a loopback webhook receiver.

The workers run without the reuse cache, so every saving here is the in-flight coalescing's."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from chorus.db.models import Job
from tests.fixtures.client import finished, poll, submit, wait_until
from tests.fixtures.services import TenantKey
from tests.fixtures.webhooks import Receiver, start_worker

pytestmark = pytest.mark.usefixtures("webhook_worker")


@pytest.fixture(scope="module")
def two_workers(webhook_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with (
        start_worker(webhook_env, tmp_path_factory.mktemp("a")),
        start_worker(webhook_env, tmp_path_factory.mktemp("b")),
    ):
        yield


def video(job: dict) -> bytes:
    response = httpx.get(job["output"]["video_url"], timeout=30)
    assert response.status_code == 200
    return response.content


def computed(job: dict) -> bool:
    """The job ran its own row of a forward (a follower, in its leader's batch or not, did not)."""
    return job["metrics"]["cache"] is None or job["metrics"]["cache"].get("served") != "coalesced"


@pytest.mark.usefixtures("two_workers")
def test_eight_identical_submits_run_once_and_each_gets_its_own_job_webhook_and_video(
    hooks_http: httpx.Client, tenant: TenantKey, receiver: Receiver
) -> None:
    body = {"seed": 11, "num_inference_steps": 12, "webhook": receiver.url(f"/eight-{tenant.tenant_id}")}
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: submit(hooks_http, tenant, **body)["id"], range(8)))
    assert len(set(ids)) == 8
    jobs = [finished(hooks_http, tenant, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 8, jobs

    leaders = [job for job in jobs if computed(job)]
    assert len(leaders) == 1, [job["metrics"] for job in jobs]
    (leader,) = leaders
    assert sum(job["metrics"]["forwards"] for job in jobs) == 12  # one denoise: the leader's 12 steps
    for job in jobs:
        if job is not leader:
            cache = job["metrics"]["cache"]
            # In the leader's batch (its row) or not, every follower names the one job that computed.
            assert cache["coalesced_with"] == leader["id"] and cache["hit"] is True
    assert len({job["output"]["video_url"] for job in jobs}) == 8  # each its own object
    assert len({video(job) for job in jobs}) == 1  # ... with the leader's bytes

    got = receiver.wait_for(
        f"/eight-{tenant.tenant_id}",
        lambda got: {r.payload["data"]["id"] for r in got if r.payload["type"] == "job.succeeded"} >= set(ids),
    )
    succeeded = [r.payload["data"]["id"] for r in got if r.payload["type"] == "job.succeeded"]
    assert sorted(succeeded) == sorted(ids)  # one each


@pytest.mark.usefixtures("two_workers")
def test_a_follower_of_a_canceled_leader_runs_and_succeeds(hooks_http: httpx.Client, tenant: TenantKey, db) -> None:
    body = {"seed": 5, "num_inference_steps": 40}
    leader_id = submit(hooks_http, tenant, **body)["id"]
    wait_until(hooks_http, tenant, leader_id, lambda job: job["status"] == "running" and job["progress"] > 0)
    follower_id = submit(hooks_http, tenant, **body)["id"]

    def follows() -> str | None:
        with db() as session:
            return session.scalar(select(Job.coalesced_with).where(Job.id == follower_id))

    assert str(poll(follows, lambda leader: leader is not None)) == leader_id  # claimed by the other worker

    assert hooks_http.post(f"/v1/jobs/{leader_id}/cancel", headers=tenant.headers).status_code == 202
    assert finished(hooks_http, tenant, leader_id)["status"] == "canceled"
    follower = finished(hooks_http, tenant, follower_id)
    assert follower["status"] == "succeeded", follower
    assert computed(follower) and follower["metrics"]["forwards"] == 40
