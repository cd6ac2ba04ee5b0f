"""A worker's pool process SIGKILLed mid-denoise: the job is redelivered, taken over and completes once."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from chorus.db.models import Job, WebhookDelivery
from tests.e2e.client import finished, submit, wait_until
from tests.fixtures.services import TenantKey
from tests.fixtures.webhooks import STARTUP_S, Receiver, start_worker

pytestmark = pytest.mark.usefixtures("webhook_worker")


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_pool_process_job_completes_once(
    hooks_http: httpx.Client,
    tenant: TenantKey,
    receiver: Receiver,
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    db,
) -> None:
    with start_worker(service_env, tmp_path_factory.mktemp("worker")) as worker:
        job_id = submit(hooks_http, tenant, num_inference_steps=12, webhook=receiver.url("/killed"))["id"]
        wait_until(hooks_http, tenant, job_id, lambda job: job["status"] == "running" and job["progress"] > 0)
        (child,) = pool_children(worker.process.pid)
        os.kill(child, signal.SIGKILL)  # the parent requeues the message (task_reject_on_worker_lost)

        job = finished(hooks_http, tenant, job_id, timeout_s=STARTUP_S)  # a new pool process loads the model
        assert job["status"] == "succeeded" and job["output"]["bytes"] > 0, job
        assert "took over 1 jobs" in worker.log()
    got = receiver.wait_for("/killed", lambda got: len(got) >= 1)
    assert [r.payload["type"] for r in got] == ["job.succeeded"]
    with db() as session:
        row = session.get(Job, uuid.UUID(job_id))
        assert row.attempts == 2
        events = [d.event for d in session.query(WebhookDelivery).filter(WebhookDelivery.job_id == row.id)]
    assert events == ["job.succeeded"]
