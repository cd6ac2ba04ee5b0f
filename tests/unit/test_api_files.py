"""/v1/files serves a local-folder store (the embedded mode's videos) and nothing else. No services needed:
the app opens no connection until a route uses one."""

from fastapi.testclient import TestClient

from api.app import create_app
from chorus.config import Settings
from chorus.storage.local import LocalStore


def client(store_url: str) -> TestClient:
    return TestClient(create_app(Settings(_env_file=None, store_url=store_url)))


def test_serves_local_store_objects(tmp_path):
    LocalStore(tmp_path).put("videos/t/j.mp4", b"mp4 bytes")
    (tmp_path.parent / "secret.txt").write_text("outside the store")
    with client(f"file://{tmp_path}") as http:
        response = http.get("/v1/files/videos/t/j.mp4")
        assert response.status_code == 200 and response.content == b"mp4 bytes"
        assert response.headers["content-type"] == "video/mp4"
        for key in ("videos/t/missing.mp4", "../secret.txt", "%2e%2e/secret.txt"):
            response = http.get(f"/v1/files/{key}")
            assert response.status_code == 404 and response.json()["error"]["code"] in ("file_not_found", "not_found")


def test_not_served_with_an_s3_store():
    with client("s3://bucket/prefix") as http:
        response = http.get("/v1/files/videos/t/j.mp4")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
