"""Rejected requests: each a 4xx with a machine-readable code, and no job row written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chorus.auth import revoke_key
from chorus.db.models import Job

BAD_BODIES = [
    ({"prompt": ""}, 422, "invalid_prompt"),
    ({"prompt": "x" * 2001}, 422, "invalid_prompt"),
    ({"prompt": "nul \u0000 byte"}, 422, "invalid_prompt"),
    ({"prompt": "\x01\x02\x7f binary"}, 422, "invalid_prompt"),
    ({"prompt": 12345}, 422, "invalid_prompt"),
    ({}, 422, "invalid_prompt"),
    ({"prompt": "ok", "height": -32}, 422, "invalid_height"),
    ({"prompt": "ok", "width": 10**12}, 422, "invalid_width"),
    ({"prompt": "ok", "width": 1024}, 422, "invalid_width"),  # above the model's max side
    ({"prompt": "ok", "height": 40}, 422, "invalid_height"),  # not divisible by 16
    ({"prompt": "ok", "num_frames": 8}, 422, "invalid_num_frames"),
    ({"prompt": "ok", "num_inference_steps": 0}, 422, "invalid_num_inference_steps"),
    ({"prompt": "ok", "guidance_scale": "high"}, 422, "invalid_guidance_scale"),
    ({"prompt": "ok", "model": "no-such-model"}, 422, "unknown_model"),
    ({"prompt": "ok", "model": "../models/chorus-shapes"}, 422, "unknown_model"),
    ({"prompt": "ok", "webhook": "ftp://example.com/x"}, 422, "invalid_webhook"),
    ({"prompt": "ok", "webhook_events": ["sometimes"]}, 422, "invalid_webhook_events"),
    ({"prompt": "ok", "cache": {"mode": "always"}}, 422, "invalid_cache"),
    ({"prompt": "ok", "metadata": {"blob": "x" * 5000}}, 422, "invalid_metadata"),
    ({"prompt": "ok", "colour": "red"}, 422, "unknown_field"),
    (["prompt"], 422, "invalid_body"),
]


@pytest.fixture
def assert_nothing_written(db, tenant):
    yield
    with db() as session:
        assert session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id)) == 0


@pytest.mark.usefixtures("assert_nothing_written")
@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_body(http, tenant, body, status, code):
    response = http.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]


@pytest.mark.usefixtures("assert_nothing_written")
@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"prompt": "unterminated', 400, "malformed_json"),
        (b'{"prompt": "\xff\xfe not utf-8"}', 400, "malformed_json"),
        (b'{"prompt": "' + b"x" * 70_000 + b'"}', 413, "body_too_large"),
        (b"", 422, "invalid_body"),
    ],
)
def test_unparseable_body(http, tenant, content, status, code):
    headers = tenant.headers | {"Content-Type": "application/json"}
    response = http.post("/v1/jobs", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.usefixtures("assert_nothing_written")
def test_streamed_body_over_the_limit(http, tenant):
    chunks = iter([b'{"prompt": "', b"x" * 70_000, b'"}'])  # no Content-Length: sent chunked
    headers = tenant.headers | {"Content-Type": "application/json"}
    response = http.post("/v1/jobs", content=chunks, headers=headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


@pytest.mark.usefixtures("assert_nothing_written")
def test_oversized_idempotency_key(http, tenant):
    response = http.post("/v1/jobs", json={"prompt": "ok"}, headers=tenant.headers | {"Idempotency-Key": "k" * 201})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_idempotency_key"


@pytest.mark.usefixtures("assert_nothing_written")
def test_api_keys(http, tenant, db):
    cases = [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key"),
        ({"Authorization": "Bearer chorus_" + "x" * 40}, "invalid_api_key"),
    ]
    for headers, code in cases:
        response = http.post("/v1/jobs", json={"prompt": "ok"}, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == code, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    with db() as session:  # revoked before its first use, so no API process has it verified yet
        revoke_key(session, tenant.key)
    for method, path in (("POST", "/v1/jobs"), ("GET", "/v1/jobs")):
        response = http.request(method, path, json={"prompt": "ok"}, headers=tenant.headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "revoked_api_key"


def test_unknown_routes_and_ids(http, tenant):
    assert http.get("/v1/nothing").json()["error"]["code"] == "not_found"
    assert http.get("/v1/jobs/not-a-uuid", headers=tenant.headers).json()["error"]["code"] == "job_not_found"
    response = http.delete("/v1/jobs", headers=tenant.headers)
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    response = http.get("/v1/jobs", params={"status": "sleeping"}, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_status"
