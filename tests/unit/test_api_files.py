"""/v1/files serves a local-folder store's videos through signed, expiring links, and nothing else. No
services needed: the app opens no connection until a route uses one."""

import time
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from api.app import create_app
from chorus.config import Settings
from chorus.storage.links import signature
from chorus.storage.local import LocalStore

SECRET = "test-link-secret"


def client(store_url: str) -> TestClient:
    return TestClient(create_app(Settings(_env_file=None, store_url=store_url, link_secret=SECRET)))


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_serves_videos_through_their_signed_link(tmp_path):
    store = LocalStore(tmp_path, link_secret=SECRET)
    store.put("videos/t/j.mp4", b"mp4 bytes")
    with client(f"file://{tmp_path}") as http:
        response = http.get(local_path(store.url("videos/t/j.mp4", 60)))
        assert response.status_code == 200 and response.content == b"mp4 bytes"
        assert response.headers["content-type"] == "video/mp4"


def test_unsigned_tampered_and_expired_links_are_refused(tmp_path):
    store = LocalStore(tmp_path, link_secret=SECRET)
    store.put("videos/t/j.mp4", b"mp4 bytes")
    link = store.url("videos/t/j.mp4", 60)
    query = parse_qs(urlsplit(link).query)
    expires, sig = int(query["expires"][0]), query["signature"][0]
    past = int(time.time()) - 1
    tampered = sig[:-1] + ("1" if sig[-1] == "0" else "0")  # always another signature than the real one
    with client(f"file://{tmp_path}") as http:
        cases = {
            "/v1/files/videos/t/j.mp4": "link_unsigned",
            f"/v1/files/videos/t/j.mp4?expires={expires}": "link_unsigned",
            f"/v1/files/videos/t/j.mp4?expires={expires}&signature={tampered}": "link_signature_invalid",
            f"/v1/files/videos/t/j.mp4?expires={expires + 3600}&signature={sig}": "link_signature_invalid",
            f"/v1/files/videos/t/j.mp4?expires={past}&signature={signature(SECRET, 'videos/t/j.mp4', past)}": (
                "link_expired"
            ),
            f"/v1/files/videos/t/j.mp4?expires={expires}&signature={signature('another', 'videos/t/j.mp4', expires)}": (
                "link_signature_invalid"
            ),
        }
        for path, code in cases.items():
            response = http.get(path)
            assert response.status_code == 403 and response.json()["error"]["code"] == code, (path, response.text)


def test_only_videos_are_served_whatever_the_signature(tmp_path):
    store = LocalStore(tmp_path, link_secret=SECRET)
    store.put("cache/tenant/entry/latents.safetensors", b"tensors")
    (tmp_path.parent / "secret.txt").write_text("outside the store")
    with client(f"file://{tmp_path}") as http:
        for key in ("cache/tenant/entry/latents.safetensors", "videos/../cache/tenant/entry/latents.safetensors"):
            link = local_path(store.url(key, 60)).replace("..", "%2e%2e")  # so the client keeps the dots
            response = http.get(link)
            assert response.status_code == 404 and response.json()["error"]["code"] == "file_not_found", key
        for key in ("videos/t/missing.mp4", "videos/../../secret.txt"):
            response = http.get(local_path(store.url(key, 60)).replace("..", "%2e%2e"))
            assert response.status_code == 404 and response.json()["error"]["code"] == "file_not_found", key


def test_not_served_with_an_s3_store():
    with client("s3://bucket/prefix") as http:
        response = http.get("/v1/files/videos/t/j.mp4")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
