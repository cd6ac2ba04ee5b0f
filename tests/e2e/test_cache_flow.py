"""The inter-request cache end to end: HTTP submit -> ``celery worker`` (lookup in pgvector, fetch from moto S3,
plan, denoise with reuse, admit) -> the plan in the job's metrics.

Every test has its own tenants, so its cache domains start empty whatever else ran in this session.
"""

from __future__ import annotations

import httpx
import imageio.v3 as iio
import pytest

from chorus.cache.layout import delete_objects
from chorus.storage import open_store
from tests.fixtures.cache_state import admitted, entry, settled
from tests.fixtures.client import default_video_shape, finished, submit
from tests.fixtures.services import TenantKey
from tests.fixtures.worker import WorkerProcess

PROMPT = "a red square moving right"
# At the model's 4 steps a seed variant is a miss (no Stage 1 keeps it a new sample); at 50 it is a hit.
STEPS = 50


def run(http: httpx.Client, tenant: TenantKey, db, **body) -> dict:
    """Submit, wait for success, then for the worker's cache writes (hits counted, misses admitted)."""
    job = finished(http, tenant, submit(http, tenant, **{"prompt": PROMPT, "num_inference_steps": STEPS, **body})["id"])
    assert job["status"] == "succeeded", job
    assert job["metrics"]["batch_size"] == 1  # forwards below are this job's own
    settled(db, job)  # they happen after the job succeeded
    return job


def assert_full_compute(job: dict) -> None:
    cache = job["metrics"]["cache"]
    assert cache["hit"] is False and cache["stages"] == {"stage1": 0, "stage2": 0, "stage3": STEPS}
    assert cache["recomputed_fraction_per_step"] == [1.0] * STEPS
    assert job["metrics"]["forwards"] == STEPS


def test_a_similar_second_job_is_a_cache_hit(
    http: httpx.Client, tenant: TenantKey, db, celery_worker: WorkerProcess
) -> None:
    first = run(http, tenant, db, seed=1)
    assert first["metrics"]["cache"]["reason"] == "miss: no entry" and first["metrics"]["cache"]["looked_up"]
    assert_full_compute(first)
    [stored] = admitted(db, first)
    # The latents a plan can read: the last (a replay), the end of a seed variant's Stage 1.
    assert STEPS in stored.steps_stored and stored.domain == str(tenant.tenant_id)

    second = run(http, tenant, db, seed=2)  # same prompt, another sample
    cache, metrics = second["metrics"]["cache"], second["metrics"]
    assert cache["hit"] is True and cache["reason"] == "seed variant"
    assert cache["source_id"] == str(stored.id) and cache["source_job_id"] == first["id"]
    assert cache["similarity"] == pytest.approx(1.0, abs=1e-4) and cache["diff"]["kind"] == "identical"
    assert cache["lookup_seconds"] >= 0 and cache["fetch_seconds"] >= 0 and cache["fetched_from"] == "store"
    skipped = cache["stages"]["stage1"]
    assert 0 < skipped < STEPS and cache["stages"]["stage2"] == 0
    assert metrics["forwards"] == STEPS - skipped < first["metrics"]["forwards"]
    assert metrics["tokens"] < first["metrics"]["tokens"]
    video = httpx.get(second["output"]["video_url"], timeout=30)
    assert iio.imread(video.content, plugin="FFMPEG", extension=".mp4").shape == (*default_video_shape(), 3)
    assert admitted(db, second) == []  # only full-compute runs become entries
    counted = entry(db, str(stored.id))
    assert (counted.hits, counted.steps_saved_total) == (1, pytest.approx(cache["steps_saved"]))

    # An edited prompt: whatever the policy decides, the job ran exactly the plan its metrics record.
    edited = run(http, tenant, db, prompt="a blue square moving right", seed=3)
    cache, metrics = edited["metrics"]["cache"], edited["metrics"]
    assert cache["source_id"] == str(stored.id) and cache["diff"]["kind"] in ("edited", "unrelated")
    assert cache["edit_kinds"] == (["appearance"] if cache["diff"]["kind"] == "edited" else None)  # a colour swap
    fractions = cache["recomputed_fraction_per_step"]
    assert metrics["forwards"] == sum(share > 0 for share in fractions) == STEPS - cache["stages"]["stage1"]
    tokens_per_full_step = first["metrics"]["tokens"] / STEPS
    assert metrics["tokens"] == pytest.approx(tokens_per_full_step * sum(fractions), abs=cache["stages"]["stage2"])
    assert cache["hit"] == (cache["steps_saved"] > 0) and cache["hit"] != cache["reason"].startswith("miss")
    assert len(admitted(db, edited)) == (0 if cache["hit"] else 1)


def test_cache_mode_off_is_never_a_hit_and_never_admitted(
    http: httpx.Client, tenant: TenantKey, db, celery_worker: WorkerProcess
) -> None:
    [stored] = admitted(db, run(http, tenant, db, seed=1))

    # Same prompt and seed: with the cache on, this would be a pure replay.
    off = run(http, tenant, db, seed=1, cache={"mode": "off"})
    assert off["metrics"]["cache"]["reason"] == "off: the job asked for cache mode off"
    assert off["metrics"]["cache"]["looked_up"] is False
    assert_full_compute(off)
    assert admitted(db, off) == [] and entry(db, str(stored.id)).hits == 0


def test_tenants_do_not_share_entries(http: httpx.Client, make_tenant, db, celery_worker: WorkerProcess) -> None:
    owner, other = make_tenant(), make_tenant()
    run(http, owner, db, seed=1)

    stranger = run(http, other, db, seed=1)  # same prompt and seed: a replay, were the entry visible
    assert stranger["metrics"]["cache"]["reason"] == "miss: no entry"
    assert_full_compute(stranger)
    [own] = admitted(db, stranger)
    assert own.domain == str(other.tenant_id)


def test_an_entry_whose_objects_are_gone_falls_back_to_full_compute(
    http: httpx.Client, tenant: TenantKey, db, settings, celery_worker: WorkerProcess
) -> None:
    [stored] = admitted(db, run(http, tenant, db, seed=1))
    delete_objects(open_store(settings), stored.object_prefix)  # the worker's store: same bucket and prefix

    second = run(http, tenant, db, seed=2)
    cache = second["metrics"]["cache"]
    assert cache["reason"] == "miss: entry unavailable (EntryUnavailable)" and cache["source_id"] == str(stored.id)
    assert_full_compute(second)
    assert second["output"]["bytes"] > 0
    assert f"cache entry {stored.id} unavailable for job {second['id']}" in celery_worker.log()  # before it ran
