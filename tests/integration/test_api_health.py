"""Probes, the OpenAPI document, and what happens when the broker is down."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from chorus.db.models import Job
from tests.fixtures.services import free_port, run_api


def test_probes(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "store": "ok"},
    }


def test_openapi_documents_the_job_schema(http):
    spec = http.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"JobInput", "JobView", "ErrorBody", "JobList"} <= set(schemas)
    assert schemas["JobInput"]["properties"]["prompt"]["maxLength"] == 2000
    assert spec["paths"]["/v1/jobs"]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


@pytest.fixture(scope="module")
def api_without_broker(service_env, tmp_path_factory):
    """The API with its broker URL pointing at a port nobody listens on."""
    env = service_env | {"CHORUS_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with run_api(env, tmp_path_factory.mktemp("api-no-broker")) as url:
        yield url


def test_readyz_names_the_broker(api_without_broker):
    response = httpx.get(f"{api_without_broker}/readyz", timeout=30)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "broker_unavailable" and "broker" in error["message"]
    assert error["details"]["database"] == "ok" and error["details"]["broker"] != "ok"


def test_submit_without_broker_writes_nothing(api_without_broker, tenant, db):
    response = httpx.post(
        f"{api_without_broker}/v1/jobs",
        json={"prompt": "a red square"},
        headers=tenant.headers | {"Idempotency-Key": "retry-me"},
        timeout=30,
    )
    assert response.status_code == 503 and response.json()["error"]["code"] == "broker_unavailable"
    with db() as session:
        assert session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id)) == 0
