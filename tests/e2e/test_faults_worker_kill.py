"""A worker SIGKILLed mid-denoise, its pool process alone or the whole worker: the job is taken over by
a worker that gets its message again, and completes once."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chorus.db.models import Job, WebhookDelivery
from tests.fixtures.client import finished, poll, submit, wait_until
from tests.fixtures.services import TenantKey, run_api
from tests.fixtures.webhooks import STARTUP_S, Receiver, start_worker

pytestmark = pytest.mark.usefixtures("webhook_worker")


def beating_each_second(env: dict[str, str]) -> dict[str, str]:
    """A worker whose killed processes count as dead 3 s after their last heartbeat, not 30 s."""
    return {**env, "CHORUS_HEARTBEAT_EVERY_S": "1"}


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
    with start_worker(beating_each_second(service_env), tmp_path_factory.mktemp("worker")) as worker:
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
        assert session.get(Job, uuid.UUID(job_id)).attempts == 2
    assert recorded_events(db, job_id) == ["job.succeeded"]


def recorded_events(db, job_id: str) -> list[str]:
    """The job's delivery rows, once there is one (a row is written after the receiver answered)."""

    def events() -> list[str]:
        with db() as session:
            rows = session.query(WebhookDelivery).filter(WebhookDelivery.job_id == uuid.UUID(job_id))
            return [row.event for row in rows]

    return poll(events, bool)


@pytest.fixture(scope="module")
def sweeping_http(webhook_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API that looks for jobs without a live message every second (CHORUS_REQUEUE_*)."""
    env = {**webhook_env, "CHORUS_REQUEUE_INTERVAL_S": "1", "CHORUS_REQUEUE_AFTER_S": "2"}
    with run_api(env, tmp_path_factory.mktemp("api-sweep")) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def test_a_killed_workers_job_is_taken_over_by_the_next_worker(
    sweeping_http: httpx.Client,
    tenant: TenantKey,
    receiver: Receiver,
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    db,
) -> None:
    with start_worker(beating_each_second(service_env), tmp_path_factory.mktemp("worker")) as doomed:
        job = submit(
            sweeping_http, tenant, height=128, width=128, num_inference_steps=40, webhook=receiver.url("/died")
        )
        wait_until(sweeping_http, tenant, job["id"], lambda job: job["status"] == "running" and job["progress"] > 0)
        for pid in [*pool_children(doomed.process.pid), doomed.process.pid]:  # the node is gone, all at once
            os.kill(pid, signal.SIGKILL)
        doomed.process.wait()
        doomed.process = None
    # Its message stays "taken" in Redis for the visibility timeout (an hour); once the dead worker's
    # heartbeat has expired (three beats) the API's sweep sends the job again, and a new worker takes it over.
    with start_worker(service_env, tmp_path_factory.mktemp("worker")) as successor:
        ended = finished(sweeping_http, tenant, job["id"], timeout_s=STARTUP_S)
        assert ended["status"] == "succeeded" and ended["output"]["bytes"] > 0, ended
        assert "took over 1 jobs" in successor.log()
    got = receiver.wait_for("/died", lambda got: len(got) >= 1)
    assert [r.payload["type"] for r in got] == ["job.succeeded"]
    with db() as session:
        assert session.get(Job, uuid.UUID(job["id"])).attempts == 2
