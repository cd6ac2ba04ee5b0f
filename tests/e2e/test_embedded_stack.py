"""The embedded stack (``chorus up``) is the whole product: webhooks delivered and signed, video links
signed and expiring, loopback receivers allowed on request while metadata addresses stay refused."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from standardwebhooks import Webhook

from chorus.embedded import Stack, embedded_stack
from chorus.storage.links import signature
from tests.fixtures.client import finished, poll, submit
from tests.fixtures.services import TenantKey
from tests.fixtures.webhooks import STARTUP_S, Receiver, run_receiver


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's basetemp: pgserver's unprivileged postgres user must traverse it (see test_embedded_demo).
    with tempfile.TemporaryDirectory(prefix="chorus-up-") as folder:
        with embedded_stack(Path(folder), allow_private_webhooks=True, ready_timeout_s=STARTUP_S) as stack:
            yield stack


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with run_receiver() as receiver:
        yield receiver


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture
def demo(stack: Stack) -> TenantKey:
    return TenantKey(tenant_id=None, name="demo", key=stack.api_key)  # type: ignore[arg-type]


def test_a_job_with_a_webhook_to_a_local_receiver_is_delivered_signed(
    client: httpx.Client, demo: TenantKey, receiver: Receiver
) -> None:
    hook = {"webhook": receiver.url("/up"), "webhook_events": ["job.started"]}
    job = finished(client, demo, submit(client, demo, **hook)["id"], timeout_s=STARTUP_S)
    assert job["status"] == "succeeded", job
    got = receiver.wait_for("/up", lambda got: any(r.payload["type"] == "job.succeeded" for r in got))

    [secret] = client.get("/v1/webhooks/secret", headers=demo.headers).json()["secrets"]
    bodies = [Webhook(secret).verify(r.body, r.headers) for r in got]  # raises on a bad signature
    assert sorted(body["type"] for body in bodies) == ["job.started", "job.succeeded"]
    url = f"/v1/jobs/{job['id']}/deliveries"
    deliveries = poll(lambda: client.get(url, headers=demo.headers).json()["data"], lambda rows: len(rows) >= 2)
    assert sorted((d["event"], d["status_code"]) for d in deliveries) == [("job.started", 200), ("job.succeeded", 200)]


def test_metadata_addresses_stay_refused_when_private_ones_are_allowed(client: httpx.Client, demo: TenantKey) -> None:
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/latest/meta-data"):
        response = client.post("/v1/jobs", json={"prompt": "a red square", "webhook": url}, headers=demo.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_forbidden_address"


def test_video_links_are_signed_expiring_and_for_videos_only(
    client: httpx.Client, demo: TenantKey, stack: Stack
) -> None:
    job = finished(client, demo, submit(client, demo, seed=5)["id"], timeout_s=STARTUP_S)
    assert job["status"] == "succeeded", job
    link = urlsplit(job["output"]["video_url"])
    query = {name: values[0] for name, values in parse_qs(link.query).items()}
    assert int(query["expires"]) > time.time()

    video = client.get(f"{link.path}?{link.query}")
    assert video.status_code == 200 and len(video.content) == job["output"]["bytes"]

    key = link.path.removeprefix("/v1/files/")
    secret = stack.env["CHORUS_LINK_SECRET"]
    past = int(time.time()) - 1
    refused = {
        link.path: "link_unsigned",  # stripped
        f"{link.path}?{urlencode({**query, 'signature': query['signature'][::-1]})}": "link_signature_invalid",
        f"{link.path}?{urlencode({**query, 'expires': int(query['expires']) + 86400})}": "link_signature_invalid",
        f"{link.path}?{urlencode({'expires': past, 'signature': signature(secret, key, past)})}": "link_expired",
    }
    for path, code in refused.items():
        response = client.get(path)
        assert response.status_code == 403 and response.json()["error"]["code"] == code, (path, response.text)

    # A cache entry's tensors are never served, even through a link signed with the deployment's secret.
    store = Path(stack.env["CHORUS_STORE_URL"].removeprefix("file://"))

    def tensors() -> list[str]:
        names = [path.relative_to(store).as_posix() for path in store.rglob("*") if path.is_file()]
        return [name for name in names if not name.startswith("videos/")]

    entry = poll(tensors, bool)[0]  # the job's run is admitted as an entry just after it succeeded
    expires = int(time.time()) + 60
    signed = urlencode({"expires": expires, "signature": signature(secret, entry, expires)})
    response = client.get(f"/v1/files/{entry}?{signed}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "file_not_found"
