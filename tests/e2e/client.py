"""What the end-to-end tests do as an HTTP client: submit a job, poll it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.services import TenantKey

TERMINAL = {"succeeded", "failed", "canceled"}
# Generous: the 2-core machines that run these tests are often busy with other work.
TIMEOUT_S = 300


def submit(http: httpx.Client, tenant: TenantKey, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/jobs", json={"prompt": "a red square moving right", **body}, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()


def wait_until(
    http: httpx.Client, tenant: TenantKey, job_id: str, done: Callable[[dict], bool], timeout_s: float = TIMEOUT_S
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = http.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json()
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout_s} s: {job}"
        time.sleep(0.1)


def finished(http: httpx.Client, tenant: TenantKey, job_id: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    return wait_until(http, tenant, job_id, lambda job: job["status"] in TERMINAL, timeout_s)
