"""Signed webhooks on real services: API, job worker, webhook worker, Redis, Postgres, a loopback receiver.

Signatures are checked with the third-party ``standardwebhooks`` package, never with our own code.
"""

from __future__ import annotations

import uuid
import warnings

import httpx
import openai
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from chorus.db.models import WebhookDelivery
from tests.fixtures.client import finished, poll, submit
from tests.fixtures.services import TenantKey, free_port
from tests.fixtures.webhooks import STARTUP_S, Receiver
from tests.fixtures.worker import WorkerProcess, wait_for_messages_consumed

pytestmark = pytest.mark.usefixtures("job_worker", "webhook_worker")


@pytest.fixture
def client(hooks_http: httpx.Client) -> httpx.Client:
    return hooks_http


def secrets_of(client: httpx.Client, tenant: TenantKey) -> list[str]:
    response = client.get("/v1/webhooks/secret", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()["secrets"]


def deliveries_of(client: httpx.Client, tenant: TenantKey, job_id: str, count: int) -> list[dict]:
    """The job's recorded attempts, once there are ``count``: a row is written after the receiver answered."""
    url = f"/v1/jobs/{job_id}/deliveries"
    return poll(lambda: client.get(url, headers=tenant.headers).json()["data"], lambda rows: len(rows) >= count)


def test_job_events_are_signed_throttled_and_carry_the_job(
    client: httpx.Client, tenant: TenantKey, receiver: Receiver
) -> None:
    events = ["job.started", "job.progress"]
    job_id = submit(client, tenant, num_inference_steps=8, webhook=receiver.url("/job"), webhook_events=events)["id"]
    job = finished(client, tenant, job_id, timeout_s=STARTUP_S)
    got = receiver.wait_for("/job", lambda got: any(r.payload["type"] == "job.succeeded" for r in got))

    (secret,) = secrets_of(client, tenant)
    # Deliveries are separate tasks and may arrive out of order; the payload's timestamp orders them.
    bodies = sorted((Webhook(secret).verify(r.body, r.headers) for r in got), key=lambda body: body["timestamp"])
    types = [body["type"] for body in bodies]
    assert types[0] == "job.started" and types[-1] == "job.succeeded"
    assert types.count("job.started") == types.count("job.succeeded") == 1
    # At most one progress event per 2 s, not one per step.
    assert 1 <= types.count("job.progress") <= 1 + job["metrics"]["run_seconds"] / 2
    assert len({r.headers["webhook-id"] for r in got}) == len(got)
    final = bodies[-1]["data"]
    assert final["id"] == job_id and final["status"] == "succeeded" and final["output"]["bytes"] > 0

    deliveries = deliveries_of(client, tenant, job_id, len(got))
    assert [d["status_code"] for d in deliveries] == [200] * len(got)


def test_video_events_are_openais_and_the_sdk_unwraps_them(
    client: httpx.Client, tenant: TenantKey, receiver: Receiver, hooks_api: str
) -> None:
    """A job submitted through /v1/videos gets OpenAI's events (only the end, only the id), which the openai
    SDK's ``webhooks.unwrap`` verifies (Standard Webhooks) and reads."""
    body = {"prompt": "a red square moving right", "webhook": receiver.url("/video")}
    created = client.post("/v1/videos", json=body, headers=tenant.headers)
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    [got] = receiver.wait_for("/video", bool, timeout_s=STARTUP_S)

    (secret,) = secrets_of(client, tenant)
    with warnings.catch_warnings():  # the SDK's videos resource is marked deprecated (OpenAI's Sora API)
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk = openai.OpenAI(base_url=f"{hooks_api}/v1", api_key=tenant.key, max_retries=0)
    event = sdk.webhooks.unwrap(got.body, got.headers, secret=secret)
    assert (event.type, event.object, event.data.id, event.id) == (
        "video.completed",
        "event",
        video_id,
        got.headers["webhook-id"],
    )
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.unwrap(got.body.replace(video_id, str(uuid.uuid4())), got.headers, secret=secret)


def test_a_500_is_retried_with_the_same_id_and_both_rotated_secrets_sign(
    client: httpx.Client, tenant: TenantKey, receiver: Receiver, db
) -> None:
    first = secrets_of(client, tenant)
    rotated = client.post("/v1/webhooks/secret/rotate", headers=tenant.headers).json()["secrets"]
    assert rotated[1:] == first and len(rotated) == 2
    receiver.scripts["/flaky"] = [500, 503]

    queued = client.post("/v1/webhooks/test", json={"url": receiver.url("/flaky")}, headers=tenant.headers)
    assert queued.status_code == 202, queued.text
    got = receiver.wait_for("/flaky", lambda got: len(got) == 3)

    assert {r.headers["webhook-id"] for r in got} == {queued.json()["webhook_id"]}
    for secret in rotated:  # a receiver on either secret accepts every attempt
        assert all(Webhook(secret).verify(r.body, r.headers)["type"] == "webhook.test" for r in got)

    def attempts() -> list[WebhookDelivery]:
        with db() as session:
            query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == queued.json()["webhook_id"])
            return session.scalars(query.order_by(WebhookDelivery.attempt)).all()

    rows = poll(attempts, lambda rows: len(rows) >= 3)  # the third row is written after the receiver answered
    assert [(row.attempt, row.status_code) for row in rows] == [(1, 500), (2, 503), (3, 200)]
    assert rows[0].next_retry_at is not None and rows[2].next_retry_at is None


def test_410_disables_the_endpoint_for_the_job(
    client: httpx.Client, tenant: TenantKey, receiver: Receiver, webhook_worker
) -> None:
    receiver.scripts["/gone"] = [410]
    hook = {"webhook": receiver.url("/gone"), "webhook_events": ["job.started"]}
    job_id = submit(client, tenant, **hook)["id"]
    assert finished(client, tenant, job_id, timeout_s=STARTUP_S)["status"] == "succeeded"
    deliveries = deliveries_of(client, tenant, job_id, 2)  # the succeeded event is recorded as not sent

    assert [r.payload["type"] for r in receiver.at("/gone")] == ["job.started"]
    assert [(d["event"], d["status_code"]) for d in deliveries] == [("job.started", 410), ("job.succeeded", None)]
    assert deliveries[1]["error"] == f"not sent: {hook['webhook']} answered 410 for this job"


def test_a_job_canceled_while_queued_is_announced_by_the_api(
    client: httpx.Client, tenant: TenantKey, receiver: Receiver, job_worker: WorkerProcess
) -> None:
    job_worker.pause()  # no worker takes the message: the event must come from the API
    try:
        job_id = submit(client, tenant, webhook=receiver.url("/canceled"))["id"]
        canceled = client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers)
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
        got = receiver.wait_for("/canceled", lambda got: len(got) >= 1)
    finally:
        job_worker.resume()
    wait_for_messages_consumed(job_worker.settings, [job_id])  # the worker met the message and dropped it
    assert [r.payload["type"] for r in got] == ["job.canceled"] and got[0].payload["data"]["status"] == "canceled"
    deliveries = deliveries_of(client, tenant, job_id, 1)
    assert [(d["event"], d["status_code"]) for d in deliveries] == [("job.canceled", 200)]  # once, not again


def test_a_receiver_that_is_down_does_not_hold_up_the_job(client: httpx.Client, tenant: TenantKey) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    job = finished(client, tenant, submit(client, tenant, webhook=dead)["id"], timeout_s=STARTUP_S)
    assert job["status"] == "succeeded"

    deliveries = deliveries_of(client, tenant, job["id"], 1)  # the job ended before its delivery task ran
    assert deliveries[0]["status_code"] is None and "Connect" in deliveries[0]["error"]


def test_private_webhook_urls_are_refused(client: httpx.Client, tenant: TenantKey) -> None:
    # Only 127.0.0.0/8 is allowed here (CHORUS_WEBHOOK_ALLOW_NETWORKS); other private ranges stay refused.
    for url in ("http://10.0.0.7/x", "http://169.254.169.254/latest", "http://[::1]/x"):
        response = client.post("/v1/jobs", json={"prompt": "a red square", "webhook": url}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "webhook_forbidden_address"
