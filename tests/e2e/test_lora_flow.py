"""Per-request LoRAs over HTTP: two adapters registered with ``chorus models add-lora`` on a diffusers Wan2.1
folder, served by a real API and ``celery worker``: GET /v1/models lists them, an unknown one is a 404 at
submit, jobs of two adapters in flight land in separate batches (and apart from base jobs), and the cache
never serves a base entry to an adapter request, one adapter's to another's, or one scale's to another."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import av
import httpx
import numpy as np
import pytest

from tests.fixtures.cache_state import run_settled
from tests.fixtures.client import finished, submit
from tests.fixtures.services import REPO_ROOT, TenantKey, run_api
from tests.fixtures.wan_folder import write_random_lora, write_wan_folder
from tests.fixtures.worker import WorkerProcess, run_worker

SIZE = {"num_frames": 5, "height": 32, "width": 32, "num_inference_steps": 4, "guidance_scale": 1.0}
PROMPT = "a red square moving right"


@pytest.fixture(scope="module")
def lora_env(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("wan21-lora")
    folder = write_wan_folder(root / "Wan2.1-tiny")
    env = {**service_env, "CHORUS_MODELS_DIR": str(root / "models"), "CHORUS_DEFAULT_MODEL": "wan-tiny"}

    def chorus(*args: str) -> None:  # this checkout's CLI, as the workers run it
        subprocess.run([sys.executable, "-m", "chorus.cli", *args], env=os.environ | env, cwd=REPO_ROOT, check=True)

    chorus("models", "add", str(folder), "--id", "wan-tiny")
    for name, seed in (("ink", 1), ("neon", 2)):
        chorus("models", "add-lora", "wan-tiny", str(write_random_lora(folder, root / name, seed=seed)), "--name", name)
    return env


@pytest.fixture(scope="module")
def lora_http(lora_env, tmp_path_factory) -> Iterator[httpx.Client]:
    with run_api(lora_env, tmp_path_factory.mktemp("api")) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def lora_worker(lora_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    with run_worker(lora_env, tmp_path_factory.mktemp("worker")) as worker:
        yield worker


def run(http: httpx.Client, tenant: TenantKey, db, **body) -> dict:
    return run_settled(http, tenant, db, **{"prompt": PROMPT, **SIZE, **body})


def frames(job: dict) -> np.ndarray:
    with av.open(io.BytesIO(httpx.get(job["output"]["video_url"], timeout=30).content)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(int)


def test_models_lists_adapters_and_an_unknown_one_is_a_404(lora_http: httpx.Client, tenant: TenantKey) -> None:
    listed = lora_http.get("/v1/models", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    [model] = listed.json()["data"]
    assert (model["id"], model["object"], model["default"]) == ("wan-tiny", "model", True)
    assert [adapter["name"] for adapter in model["adapters"]] == ["ink", "neon"]

    body = {"prompt": PROMPT, "lora": {"name": "chalk", "scale": 1.0}}
    native = lora_http.post("/v1/jobs", json=body, headers=tenant.headers)
    assert native.status_code == 404 and native.json()["error"]["code"] == "lora_not_found", native.text
    video = lora_http.post("/v1/videos", json=body, headers=tenant.headers)
    assert video.status_code == 404 and video.json()["error"]["code"] == "lora_not_found", video.text


def test_two_adapters_in_flight_land_in_separate_batches(
    lora_http: httpx.Client, tenant: TenantKey, lora_worker: WorkerProcess
) -> None:
    loras = [{"name": "ink", "scale": 1.0}] * 2 + [{"name": "neon", "scale": 1.0}] * 2 + [None]
    lora_worker.pause()  # all five queued together: the claim may batch any of them
    try:
        ids = [
            submit(lora_http, tenant, **SIZE, seed=i, cache={"mode": "off"}, **({"lora": lora} if lora else {}))["id"]
            for i, lora in enumerate(loras)
        ]
    finally:
        lora_worker.resume()
    jobs = [finished(lora_http, tenant, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 5, jobs
    batches = [job["metrics"]["batch_id"] for job in jobs]
    assert batches[0] == batches[1] and batches[2] == batches[3], batches  # each adapter's pair shared forwards
    assert len({batches[0], batches[2], batches[4]}) == 3, batches  # and no batch mixed adapters or the base
    assert [job["input"]["lora"] for job in jobs] == loras


def test_the_cache_keeps_base_adapters_and_scales_apart(
    lora_http: httpx.Client, tenant: TenantKey, db, lora_worker: WorkerProcess
) -> None:
    base = run(lora_http, tenant, db, seed=1)
    assert base["metrics"]["cache"]["reason"] == "miss: no entry"

    ink = run(lora_http, tenant, db, seed=1, lora={"name": "ink", "scale": 1.0})
    assert ink["metrics"]["cache"]["reason"] == "miss: no entry"  # the base run is not this request's
    assert np.abs(frames(ink) - frames(base)).max() > 4  # the worker applied the adapter

    again = run(lora_http, tenant, db, seed=1, lora={"name": "ink", "scale": 1.0})
    # The same adapter and scale is an exact repeat of ink's run (its fingerprint carries the adapter): a copy.
    repeat = again["metrics"]["cache"]
    assert repeat["served"] == "coalesced" and repeat["coalesced_with"] == ink["id"]
    for other in ({"name": "ink", "scale": 0.5}, {"name": "neon", "scale": 1.0}):
        run_ = run(lora_http, tenant, db, seed=1, lora=other)
        assert run_["metrics"]["cache"]["reason"] == "miss: no entry", (other, run_["metrics"]["cache"])

    computed = run(lora_http, tenant, db, seed=1, cache={"mode": "off"})  # the base model, run in full again
    assert np.abs(frames(computed) - frames(base)).max() <= 1  # the adapters left it as it was
