"""Postgres unreachable at submit: the API answers 503, writes nothing, and the client's retry with the
same Idempotency-Key makes exactly one job once the database is back. Real uvicorn, Postgres (behind a
relay the test cuts), Redis and S3; no worker."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from api.errors import RETRY_AFTER_S
from chorus.db.models import Job
from tests.fixtures.faults import SocketRelay, postgres_relay
from tests.fixtures.services import TenantKey, run_api

BODY = {"prompt": "a green triangle moving up", "seed": 11}


@pytest.fixture(scope="module")
def relay_and_api(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SocketRelay, str]]:
    with postgres_relay(service_env["CHORUS_DATABASE_URL"], tmp_path_factory.mktemp("pg-relay")) as (relay, url):
        # auth_cache 0: every request checks its key in the database, as one after the cache expired does.
        env = {**service_env, "CHORUS_DATABASE_URL": url, "CHORUS_AUTH_CACHE_S": "0"}
        with run_api(env, tmp_path_factory.mktemp("api-pg-relay")) as api:
            yield relay, api


def jobs_with_key(db, tenant: TenantKey, key: str) -> int:
    with db() as session:
        return session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id, Job.idempotency_key == key))


def test_submit_while_the_database_is_down_is_503_and_the_retry_makes_one_job(
    relay_and_api: tuple[SocketRelay, str], tenant: TenantKey, db
) -> None:
    relay, api = relay_and_api
    headers = tenant.headers | {"Idempotency-Key": "db-down-1"}
    with httpx.Client(base_url=api, timeout=30) as http:
        assert http.post("/v1/jobs", json=BODY, headers=tenant.headers).status_code == 202  # pool warmed up

        relay.cut()
        try:
            down = http.post("/v1/jobs", json=BODY, headers=headers)
            ready = http.get("/readyz")
        finally:
            relay.restore()
        assert down.status_code == 503 and down.headers["retry-after"] == str(RETRY_AFTER_S), down.text
        assert down.json()["error"]["code"] == "database_unavailable"
        assert ready.status_code == 503 and "database" in ready.text
        assert jobs_with_key(db, tenant, "db-down-1") == 0  # nothing half-written

        retried = [http.post("/v1/jobs", json=BODY, headers=headers) for _ in range(2)]
        assert [r.status_code for r in retried] == [202, 202], [r.text for r in retried]
        assert retried[0].json()["id"] == retried[1].json()["id"]
        assert jobs_with_key(db, tenant, "db-down-1") == 1
        assert http.get("/readyz").status_code == 200
