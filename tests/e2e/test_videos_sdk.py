"""/v1/videos driven by the official openai SDK (pinned in the test extras) against the real API under uvicorn,
a real ``celery worker``, Postgres, Redis and moto S3: what a team moving from SGLang or vLLM-Omni runs.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import av
import httpx
import openai
import pytest
from PIL import Image

from chorus.config import Settings
from chorus.storage import open_store
from chorus.storage.links import preview_key
from tests.fixtures.cache_state import admitted, settled
from tests.fixtures.client import TIMEOUT_S, poll
from tests.fixtures.services import TenantKey
from tests.fixtures.worker import WorkerProcess

PROMPT = "a red square moving right"
STEPS = 50  # at 50 steps a seed variant of a stored run is a hit (tests/e2e/test_cache_flow.py)

# The SDK marks its videos resource deprecated (OpenAI's own Sora API); the protocol is what we serve.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sdk(api_server: str, key: str) -> openai.OpenAI:
    # No retries: a test sees each answer as the server gave it.
    return openai.OpenAI(base_url=f"{api_server}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def client(api_server: str, tenant: TenantKey) -> Iterator[openai.OpenAI]:
    with sdk(api_server, tenant.key) as client:
        yield client


def completed(client: openai.OpenAI, video_id: str):
    video = poll(lambda: client.videos.retrieve(video_id), lambda v: v.status in ("completed", "failed"), TIMEOUT_S)
    assert video.status == "completed", video
    return video


def native_job(http: httpx.Client, tenant: TenantKey, video_id: str) -> dict:
    """The same job through /v1/jobs: one job machinery, two surfaces."""
    response = http.get(f"/v1/jobs/{video_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_create_download_previews_remix_and_delete(
    client: openai.OpenAI, http: httpx.Client, tenant: TenantKey, db, settings: Settings, celery_worker: WorkerProcess
) -> None:
    video = client.videos.create_and_poll(
        prompt=PROMPT,
        model="chorus-shapes",
        seconds="1",
        size="128x64",
        poll_interval_ms=200,
        extra_body={"seed": 1, "num_inference_steps": STEPS},
    )
    assert (video.status, video.object, video.progress, video.size, video.seconds) == (
        "completed",
        "video",
        100,
        "128x64",
        "1.125",  # the model's 9 frames at 8 fps: the nearest length to the 1 s asked for
    )
    assert video.model == "chorus-shapes" and video.prompt == PROMPT and video.remixed_from_video_id is None
    assert video.completed_at >= video.created_at and video.error is None

    mp4 = client.videos.download_content(video.id).content  # a redirect to the store, followed by the SDK
    with av.open(io.BytesIO(mp4)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 9 and {(f.width, f.height) for f in frames} == {(128, 64)}
    thumbnail = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").content))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (128, 64))
    sheet = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="spritesheet").content))
    assert sheet.format == "JPEG" and sheet.size == (3 * 128, 3 * 64)  # 9 frames in a 3 x 3 grid

    source = native_job(http, tenant, video.id)
    assert source["input"]["surface"] == "videos" and source["input"]["num_frames"] == 9
    settled(db, source)  # its run is admitted after it completed
    [entry] = admitted(db, source)

    remix = client.videos.remix(video.id, prompt=PROMPT, extra_body={"seed": 2})
    assert remix.remixed_from_video_id == video.id and remix.status in ("queued", "in_progress")
    remix = completed(client, remix.id)
    assert (remix.size, remix.seconds, remix.remixed_from_video_id) == ("128x64", "1.125", video.id)
    cache = native_job(http, tenant, remix.id)["metrics"]["cache"]
    assert cache["hit"] is True and cache["reason"].startswith("remix: ") and cache["source_job_id"] == video.id

    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError) as refused:
        client.videos.retrieve(video.id)
    assert refused.value.code == "job_not_found"
    store = open_store(settings)
    video_key = f"videos/{tenant.tenant_id}/{video.id}.mp4"
    assert not any(store.exists(key) for key in (video_key, preview_key(video_key, "thumbnail")))
    assert admitted(db, source) == [] and not store.exists(f"{entry.object_prefix}/entry.safetensors")
    assert client.videos.retrieve(remix.id).remixed_from_video_id == video.id  # the remix stands


def test_list_pages_newest_first(client: openai.OpenAI) -> None:
    made = [client.videos.create(prompt=f"{PROMPT}, take {i}", seconds="1").id for i in range(5)]
    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == made[::-1][:2] and page.has_more
    assert [v.id for v in client.videos.list(limit=2)] == made[::-1]  # the SDK follows `after` over 3 pages
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == made


def test_bad_requests_are_typed_errors(client: openai.OpenAI, api_server: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.videos.create(prompt=PROMPT, size="100x100")  # not a multiple of the model's 16
    assert bad_size.value.code == "invalid_height" and bad_size.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as empty:
        client.videos.create(prompt="")
    assert empty.value.param == "prompt"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.videos.create(prompt=PROMPT, seconds="4")  # chorus-shapes makes 9 frames at 8 fps
    assert too_long.value.code == "invalid_seconds" and '"1.125"' in too_long.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        client.videos.create(prompt=PROMPT, extra_body={"num_frames": 8})  # /v1/videos speaks in seconds
    assert unknown.value.code == "unknown_field" and unknown.value.param == "num_frames"
    with pytest.raises(openai.BadRequestError) as reference:  # image-to-video is not served: said, not ignored
        client.videos.create(prompt=PROMPT, input_reference=("frame.png", b"\x89PNG", "image/png"))
    assert reference.value.code == "unknown_field" and reference.value.param == "input_reference"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(str(uuid.uuid4()))
    with sdk(api_server, "chorus_not-a-key") as stranger, pytest.raises(openai.AuthenticationError):
        stranger.videos.list()


def test_json_bodies_are_accepted_as_well_as_the_sdks_forms(http: httpx.Client, tenant: TenantKey) -> None:
    body = {"prompt": PROMPT, "seconds": "1", "size": "64x80", "seed": 7, "cache": {"mode": "off"}}
    response = http.post("/v1/videos", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["object"], video["size"], video["seconds"], video["status"]) == ("video", "64x80", "1.125", "queued")
    job = native_job(http, tenant, video["id"])
    assert (job["input"]["seed"], job["input"]["cache"]) == (7, {"mode": "off"})
    typed = http.post("/v1/videos", json={**body, "seed": "7"}, headers=tenant.headers)  # strict, as /v1/jobs
    assert typed.status_code == 400 and typed.json()["error"]["param"] == "seed", typed.text
