"""What the end-to-end tests do as an HTTP client: submit a job, poll it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from tests.fixtures.services import TenantKey

TERMINAL = {"succeeded", "failed", "canceled"}
# Generous: the 2-core machines that run these tests are often busy with other work.
TIMEOUT_S = 300
T = TypeVar("T")


def poll(fetch: Callable[[], T], ready: Callable[[T], bool], timeout_s: float = 60) -> T:
    """``fetch()`` until ``ready`` holds for what it returns; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready(result := fetch()):
        assert time.monotonic() < deadline, f"still not ready after {timeout_s} s: {result}"
        time.sleep(0.1)
    return result


def submit(http: httpx.Client, tenant: TenantKey, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/jobs", json={"prompt": "a red square moving right", **body}, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()


def wait_until(
    http: httpx.Client, tenant: TenantKey, job_id: str, done: Callable[[dict], bool], timeout_s: float = TIMEOUT_S
) -> dict[str, Any]:
    return poll(lambda: http.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json(), done, timeout_s)


def finished(http: httpx.Client, tenant: TenantKey, job_id: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    return wait_until(http, tenant, job_id, lambda job: job["status"] in TERMINAL, timeout_s)
