"""Redis killed and restarted empty while jobs are queued and running: no job is lost or run twice.

The test's own redis-server runs without persistence, so the restart loses every queued message (the
worst case; production Redis should persist, see docker-compose.yml). While it is down the API answers
503 and the client retries with the same Idempotency-Key; afterwards the API's sweep re-sends the lost
messages (CHORUS_REQUEUE_*), and the worker, which reconnects by itself, runs every job once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.errors import RETRY_AFTER_S
from chorus.db.models import Job
from tests.fixtures.client import finished, submit, wait_until
from tests.fixtures.faults import RedisServer, redis_server
from tests.fixtures.services import TenantKey, run_api
from tests.fixtures.webhooks import STARTUP_S, start_worker
from tests.fixtures.worker import WorkerProcess

LONG = {"height": 128, "width": 128, "num_inference_steps": 40}  # seconds of denoising, even on a fast CPU
# A shape of its own: the job submitted after the restart must not pick the lost ones up as batch mates.
OTHER = {"prompt": "a blue square moving up", "num_inference_steps": 6}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def broker_env(service_env: dict[str, str], broker: RedisServer) -> dict[str, str]:
    return {
        **service_env,
        "CHORUS_BROKER_URL": broker.url,
        "CHORUS_REQUEUE_INTERVAL_S": "1",
        "CHORUS_REQUEUE_AFTER_S": "2",
    }


@pytest.fixture(scope="module")
def api(broker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with run_api(broker_env, tmp_path_factory.mktemp("api-broker")) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def worker(broker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with start_worker(broker_env, tmp_path_factory.mktemp("worker-broker")) as worker:
        yield worker


def status_of(api: httpx.Client, tenant: TenantKey, job_id: str) -> str:
    return api.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json()["status"]


def test_a_redis_restart_loses_no_job_and_runs_none_twice(
    api: httpx.Client, worker: WorkerProcess, broker: RedisServer, tenant: TenantKey, db, tmp_path: Path
) -> None:
    running = submit(api, tenant, **LONG)["id"]
    wait_until(api, tenant, running, lambda job: job["status"] == "running" and job["progress"] > 0)
    queued = [submit(api, tenant, num_inference_steps=4, seed=seed)["id"] for seed in (1, 2)]
    assert [status_of(api, tenant, job_id) for job_id in queued] == ["queued", "queued"]

    broker.kill()
    assert status_of(api, tenant, running) == "running"  # the worker is mid-job when its broker dies
    retry = tenant.headers | {"Idempotency-Key": "broker-down"}
    down = api.post("/v1/jobs", json=OTHER, headers=retry)
    assert down.status_code == 503 and down.json()["error"]["code"] == "broker_unavailable", down.text
    assert down.headers["retry-after"] == str(RETRY_AFTER_S)
    broker.start()  # same port, empty: the two queued jobs' messages are gone

    again = api.post("/v1/jobs", json=OTHER, headers=retry)
    assert again.status_code == 202, again.text
    jobs = [running, *queued, again.json()["id"]]
    ended = [finished(api, tenant, job_id, timeout_s=STARTUP_S) for job_id in jobs]
    assert [job["status"] for job in ended] == ["succeeded"] * 4, ended
    with db() as session:
        attempts = [session.get(Job, uuid.UUID(job_id)).attempts for job_id in jobs]
        with_key = session.scalar(
            select(func.count()).where(Job.tenant_id == tenant.tenant_id, Job.idempotency_key == "broker-down")
        )
    assert attempts == [1, 1, 1, 1] and with_key == 1
    assert all(job["output"]["bytes"] > 0 for job in ended)
    assert all(job["metrics"]["batch_size"] == 2 for job in ended[1:3])  # the lost pair, re-sent, ran together
