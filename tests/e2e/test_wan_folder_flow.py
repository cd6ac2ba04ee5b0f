"""A diffusers Wan2.1 folder served over HTTP with the cache on: installed with ``chorus models add``, then
a miss, its replay, a seed variant and an edit, each through the API, a ``celery worker`` (pgvector, moto
S3) and back, with the plan each job ran in its metrics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import imageio.v3 as iio
import pytest

from tests.fixtures.cache_state import run_settled
from tests.fixtures.services import TenantKey, run_api
from tests.fixtures.wan_folder import write_wan_folder
from tests.fixtures.worker import WorkerProcess, run_worker

STEPS = 20  # edits are reused from 20 steps on (ReusePolicy.min_edit_steps)
SIZE = {"num_frames": 9, "height": 32, "width": 64, "num_inference_steps": STEPS, "guidance_scale": 4.0}
PROMPT = "a red square moving right"


@pytest.fixture(scope="module")
def wan_env(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("wan21")
    folder = write_wan_folder(root / "Wan2.1-tiny")
    env = {
        **service_env,
        "CHORUS_MODELS_DIR": str(root / "models"),
        "CHORUS_DEFAULT_MODEL": "wan-tiny",
        # The edit below gets a Stage 2 whatever MiniLM's similarity of the two prompts: a 3x2x4 token grid
        # makes any region (kept in every frame, dilated) a large share, and the default plan size shrinks
        # to nothing below 0.87; only the top of the maps is kept, so the region stays smaller than the grid.
        "CHORUS_CACHE_MAX_REGION_FRACTION": "1.0",
        "CHORUS_CACHE_REGION_THRESHOLD": "0.95",
        "CHORUS_CACHE_FULL_SIMILARITY": "0.8",
        "CHORUS_CACHE_MIN_SIMILARITY": "0.5",
    }
    chorus = str(Path(sys.executable).with_name("chorus"))
    subprocess.run([chorus, "models", "add", str(folder), "--id", "wan-tiny"], env=env, check=True)
    return env


@pytest.fixture(scope="module")
def wan_http(wan_env, tmp_path_factory) -> Iterator[httpx.Client]:
    with run_api(wan_env, tmp_path_factory.mktemp("api")) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def wan_worker(wan_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    with run_worker(wan_env, tmp_path_factory.mktemp("worker")) as worker:
        yield worker


def run(http: httpx.Client, tenant: TenantKey, db, **body) -> dict:
    return run_settled(http, tenant, db, **{"prompt": PROMPT, **SIZE, **body})


def test_replay_seed_variant_and_edit_on_a_wan_folder(wan_http, tenant: TenantKey, db, wan_worker: WorkerProcess):
    first = run(wan_http, tenant, db, seed=1)
    assert first["input"]["model"] == "wan-tiny" and first["metrics"]["cache"]["hit"] is False
    assert first["metrics"]["forwards"] == STEPS
    video = httpx.get(first["output"]["video_url"], timeout=30)
    assert iio.imread(video.content, plugin="FFMPEG", extension=".mp4").shape == (9, 32, 64, 3)

    replay = run(wan_http, tenant, db, seed=1)  # an exact repeat: a copy of the first job's video, nothing run
    cache = replay["metrics"]["cache"]
    assert (cache["served"], cache["coalesced_with"], replay["metrics"]["forwards"]) == ("coalesced", first["id"], 0)
    assert httpx.get(replay["output"]["video_url"], timeout=30).content == video.content

    variant = run(wan_http, tenant, db, seed=2)
    cache = variant["metrics"]["cache"]
    assert cache["reason"] == "seed variant" and 0 < cache["stages"]["stage1"] < STEPS
    assert variant["metrics"]["forwards"] == STEPS - cache["stages"]["stage1"]

    edit = run(wan_http, tenant, db, prompt="a green square moving right", seed=1)
    cache = edit["metrics"]["cache"]
    assert cache["diff"]["kind"] == "edited" and cache["diff"]["target_words"] == ["green"]
    assert cache["hit"] and cache["stages"]["stage2"] > 0, cache  # Stage 2 on the region of "red"
    assert edit["metrics"]["tokens"] < first["metrics"]["tokens"]
