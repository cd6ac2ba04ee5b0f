"""A worker whose S3 answers some requests with 500s (a relay in front of moto injects them), and whose
jobs have a short time limit: transient errors are retried, lasting ones fail the job with a clear code
and no video, and a job over its time limit fails with ``timeout`` while the worker keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.client import finished, submit
from tests.fixtures.faults import FaultPlan, s3_fault_relay
from tests.fixtures.services import TenantKey, run_api
from tests.fixtures.webhooks import STARTUP_S, start_worker
from tests.fixtures.worker import WorkerProcess

# The limit runs from the claim and is checked between denoising steps: a job's lookup and denoise count,
# its upload does not. Apart on this machine kind: every job here but TOO_LONG is QUICK (one step at 64x64:
# 0.1-0.2 s of denoise, so a busy machine ten times slower still passes), and TOO_LONG (100 steps at
# 128x128, the model's most: 6.7 s with the other core busy) is over it even idle.
TIME_LIMIT_S = 3
QUICK = {"num_inference_steps": 1}
TOO_LONG = {"height": 128, "width": 128, "num_inference_steps": 100}


@pytest.fixture(scope="module")
def plan() -> FaultPlan:
    return FaultPlan(method="PUT", path_pattern=r"/videos/")


@pytest.fixture(scope="module")
def store_env(service_env: dict[str, str], plan: FaultPlan) -> Iterator[dict[str, str]]:
    with s3_fault_relay(service_env["CHORUS_S3_ENDPOINT_URL"], plan) as relay:
        yield {**service_env, "CHORUS_S3_ENDPOINT_URL": relay, "CHORUS_JOB_TIME_LIMIT_S": str(TIME_LIMIT_S)}


@pytest.fixture(scope="module")
def worker(store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with start_worker(store_env, tmp_path_factory.mktemp("worker-store")) as worker:
        yield worker


@pytest.fixture(scope="module")
def api(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Straight to moto: the API only reads, and presigned URLs should point at the real endpoint."""
    with run_api(service_env, tmp_path_factory.mktemp("api-store")) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def run(api: httpx.Client, tenant: TenantKey, **body: object) -> dict:
    return finished(api, tenant, submit(api, tenant, **body)["id"], timeout_s=STARTUP_S)


def test_transient_upload_errors_are_retried(
    api: httpx.Client, worker: WorkerProcess, plan: FaultPlan, tenant: TenantKey
) -> None:
    plan.fail_next, plan.failed = 2, 0
    job = run(api, tenant, seed=1, **QUICK)
    assert job["status"] == "succeeded" and plan.failed == 2, job
    assert httpx.get(job["output"]["video_url"]).content[4:8] == b"ftyp"  # the video is really there


def test_lasting_upload_errors_fail_the_job_without_a_video(
    api: httpx.Client, worker: WorkerProcess, plan: FaultPlan, tenant: TenantKey
) -> None:
    plan.fail_next, plan.failed = -1, 0
    try:
        job = run(api, tenant, seed=2, **QUICK)
    finally:
        plan.fail_next = 0
    assert (job["status"], job["error"]["code"], job["output"]) == ("failed", "upload_failed", None), job
    assert plan.failed >= 2  # botocore tried more than once before giving up
    video = api.get(f"/v1/jobs/{job['id']}/video", headers=tenant.headers, follow_redirects=False)
    assert video.status_code == 409 and video.json()["error"]["code"] == "video_not_ready"


def test_a_job_over_its_time_limit_fails_and_the_worker_serves_the_next(
    api: httpx.Client, worker: WorkerProcess, tenant: TenantKey
) -> None:
    slow = run(api, tenant, **TOO_LONG)
    assert (slow["status"], slow["error"]["code"]) == ("failed", "timeout"), slow
    assert 0 < slow["progress"] < 100 and slow["output"] is None
    after = run(api, tenant, seed=3, **QUICK)
    assert after["status"] == "succeeded", after
    assert worker.process is not None and worker.process.poll() is None  # the same worker, still up
