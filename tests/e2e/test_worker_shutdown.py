"""SIGTERM to a busy worker: the batch in progress finishes before the process exits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.client import finished, submit, wait_until
from tests.fixtures.services import TenantKey
from tests.fixtures.worker import run_worker


def test_sigterm_lets_the_running_job_finish(
    http: httpx.Client, tenant: TenantKey, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    with run_worker(service_env, Path(tmp_path_factory.mktemp("worker"))) as worker:
        job_id = submit(http, tenant, num_inference_steps=12)["id"]
        wait_until(http, tenant, job_id, lambda job: job["status"] == "running" and job["progress"] > 0)
        assert worker.stop(timeout_s=300) == 0
    job = finished(http, tenant, job_id, timeout_s=1)  # already ended: the worker finished it on the way out
    assert job["status"] == "succeeded" and job["output"]["bytes"] > 0
