"""Per-tenant quotas across two API processes on one Redis: a burst over a limit gets exactly the limit
accepted and the rest 429 (nothing enqueued for them), every accepted job runs, the openai SDK reads the 429
as RateLimitError, /metrics counts the rejections per tenant, and `chorus tenants quota` overrides a tenant.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from chorus.cli import app
from chorus.config import Settings, get_settings
from chorus.db.models import Job
from tests.fixtures.client import finished
from tests.fixtures.services import TenantKey, run_api
from tests.fixtures.worker import WorkerProcess

SUBMITS_PER_MINUTE = 5
BURST = 12


@pytest.fixture(scope="module")
def apis(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two API processes with the same quota settings (as two replicas behind a balancer)."""
    env = {**service_env, "CHORUS_QUOTA_SUBMITS_PER_MINUTE": str(SUBMITS_PER_MINUTE)}
    log_dir = tmp_path_factory.mktemp("quota-apis")
    with run_api(env, log_dir) as first, run_api(env, log_dir) as second:
        yield [first, second]


def post(api: str, tenant: TenantKey, i: int) -> httpx.Response:
    """Submit number ``i``, under the Idempotency-Key ``take-i``."""
    body = {"prompt": f"a red square moving right, take {i}"}
    headers = tenant.headers | {"Idempotency-Key": f"take-{i}"}
    return httpx.post(f"{api}/v1/jobs", json=body, headers=headers, timeout=60)


def burst(apis: list[str], tenant: TenantKey, count: int) -> list[httpx.Response]:
    """``count`` submits at once, alternating between the APIs."""

    def one(i: int) -> httpx.Response:
        return post(apis[i % len(apis)], tenant, i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def jobs_of(db, tenant: TenantKey) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant.tenant_id))


def run_all(apis: list[str], tenant: TenantKey, accepted: list[httpx.Response]) -> None:
    with httpx.Client(base_url=apis[0], timeout=30) as http:
        for response in accepted:
            assert finished(http, tenant, response.json()["id"])["status"] == "succeeded"


def test_a_burst_over_the_rate_gets_exactly_the_limit_across_two_apis(
    apis: list[str], tenant: TenantKey, db, celery_worker: WorkerProcess
) -> None:
    responses = burst(apis, tenant, BURST)
    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code == 429]
    assert (len(accepted), len(refused)) == (SUBMITS_PER_MINUTE, BURST - SUBMITS_PER_MINUTE), [
        r.text for r in responses
    ]
    for response in refused:
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.headers["x-ratelimit-limit-requests"] == str(SUBMITS_PER_MINUTE)
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in accepted)
    assert remaining == list(range(SUBMITS_PER_MINUTE))
    assert jobs_of(db, tenant) == SUBMITS_PER_MINUTE  # nothing was kept of a refused submit
    first_accepted = responses.index(accepted[0])
    retried = post(apis[0], tenant, first_accepted)  # over the limit, an accepted submit's retry is its replay
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == accepted[0].json()["id"]
    assert post(apis[0], tenant, responses.index(refused[0])).status_code == 429  # a refused one is still over
    run_all(apis, tenant, accepted)

    with warnings.catch_warnings():  # the SDK marks its videos resource deprecated (OpenAI's Sora API)
        warnings.simplefilter("ignore", DeprecationWarning)
        with openai.OpenAI(base_url=f"{apis[1]}/v1", api_key=tenant.key, max_retries=0) as client:
            with pytest.raises(openai.RateLimitError) as limited:
                client.videos.create(prompt="a blue circle", seconds="1")
    assert limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["Retry-After"]

    metrics = httpx.get(f"{apis[0]}/metrics", timeout=30).text
    line = f'chorus_quota_rejections_total{{limit="submits_per_minute",tenant="{tenant.tenant_id}"}}'
    assert f"{line} {BURST - SUBMITS_PER_MINUTE + 2}.0" in metrics, metrics  # the burst's, the retry's, the SDK's


@pytest.fixture
def chorus_cli(database_url: str, monkeypatch: pytest.MonkeyPatch):
    def run(*args: str):
        monkeypatch.setenv("CHORUS_DATABASE_URL", database_url)
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield run
    get_settings.cache_clear()


def test_a_tenants_active_jobs_cap_set_by_the_cli(
    apis: list[str], make_tenant, db, celery_worker: WorkerProcess, chorus_cli
) -> None:
    tenant, neighbour = make_tenant(), make_tenant()
    set_quota = chorus_cli("tenants", "quota", tenant.name, "--max-active-jobs", "2", "--submits-per-minute", "0")
    assert set_quota.exit_code == 0, set_quota.output
    assert "submits per minute unlimited, jobs queued or running 2" in set_quota.output
    assert chorus_cli("tenants", "quota", f"nobody-{uuid.uuid4()}", "--max-active-jobs", "1").exit_code == 2
    listed = chorus_cli("tenants", "list").output
    assert f"{tenant.name}  submits/min unlimited  active jobs 2" in listed
    default = Settings.model_fields["quota_submits_per_minute"].default  # the CLI's environment sets none
    assert f"{neighbour.name}  submits/min {default} (default)" in listed

    celery_worker.pause()  # the jobs stay queued: active
    try:
        responses = burst(apis, tenant, 6)
        accepted = [r for r in responses if r.status_code == 202]
        assert len(accepted) == 2 and {r.status_code for r in responses} == {202, 429}, [r.text for r in responses]
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.json()["error"]["code"] == "too_many_active_jobs" and refused.headers["Retry-After"]
        assert len([r for r in burst(apis, neighbour, 3) if r.status_code == 202]) == 3  # its own default quota
    finally:
        celery_worker.resume()
    run_all(apis, tenant, accepted)
    assert jobs_of(db, tenant) == 2
    # Both ended: their slots are free again (found ended in Postgres when the set is full).
    again = burst(apis, tenant, 2)
    assert [r.status_code for r in again] == [202, 202], [r.text for r in again]
