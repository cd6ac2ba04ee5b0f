"""Exact repeats through the cache session on the service's backend (Postgres + pgvector, moto S3 over HTTP):
found by fingerprint among same-prompt entries of other seeds, served as a copy of the stored video with no
transformer step and no decode; the final latent is decoded where the video is gone."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, delete

from chorus.cache.backends.postgres import PostgresBackend
from chorus.cache.embedder import MiniLMEmbedder
from chorus.db.models import CacheEntry
from chorus.fingerprint import request_fingerprint
from chorus.reuse.session import CacheJob, DenoiseStats, GenerationRequest, ReuseCache, ReuseConfig
from chorus.storage.s3 import S3Store
from chorus.video import upload_video, video_key
from tests.fixtures.random_wan import random_wan_adapter
from tests.fixtures.services import S3_BUCKET, TenantKey

PROMPT = "a red square moving right"


class CountingDecodes:
    """Wraps an adapter's decode and counts the videos it decodes."""

    def __init__(self, adapter) -> None:
        self.inner, self.videos = adapter.decode, 0
        adapter.decode = self

    def __call__(self, latents):
        self.videos += len(latents)
        return self.inner(latents)


@pytest.fixture
def store(s3_endpoint) -> S3Store:
    return S3Store(S3_BUCKET, prefix=f"exact-{secrets.token_hex(4)}", endpoint_url=s3_endpoint)


@pytest.fixture
def cache(settings, store, database_url, tenant: TenantKey) -> Iterator[ReuseCache]:
    yield ReuseCache(PostgresBackend.from_settings(settings, store), MiniLMEmbedder(), ReuseConfig())
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(delete(CacheEntry).where(CacheEntry.domain == str(tenant.tenant_id)))
    engine.dispose()


def serve(cache: ReuseCache, adapter, store: S3Store, tenant: TenantKey, seed: int) -> tuple[CacheJob, DenoiseStats]:
    """One job as the worker runs it: open, denoise, upload what was computed, settle."""
    request = GenerationRequest(prompt=PROMPT, seed=seed)
    job_id = uuid.uuid4()
    job = CacheJob(
        str(job_id), request, str(tenant.tenant_id), fingerprint=request_fingerprint(adapter.card, request),
        video_key=video_key(tenant.tenant_id, job_id),
    )  # fmt: skip
    stats = DenoiseStats()
    session = cache.open(adapter, [job])
    [frames] = session.denoise(stats=stats)
    if frames is not None:
        upload_video(store, job.video_key, frames.numpy(), adapter.limits.fps)
    session.settle({job.key})
    return job, stats


def test_an_exact_repeat_among_other_seeds_is_a_copy_of_the_stored_video(cache, store, tenant, tmp_path) -> None:
    adapter = random_wan_adapter(tmp_path / f"exact-{secrets.token_hex(4)}")
    sources = {seed: serve(cache, adapter, store, tenant, seed)[0] for seed in range(5)}  # one prompt, five seeds
    decodes = CountingDecodes(adapter)

    repeat, stats = serve(cache, adapter, store, tenant, 2)
    assert (stats.forwards, decodes.videos) == (0, 0)
    assert repeat.exact == "video" and repeat.plan.reason == "exact repeat: stored video"
    assert repeat.found.source_job_id == sources[2].key  # never a same-prompt entry of another seed
    assert store.get(repeat.video_key) == store.get(sources[2].video_key)
    metrics = repeat.metrics()
    assert metrics["hit"] and metrics["exact"] == "video" and metrics["lookup_path"] == "key"

    store.delete(sources[3].video_key)  # the video is gone, the entry's final latent is not
    decoded, stats = serve(cache, adapter, store, tenant, 3)
    assert (stats.forwards, decodes.videos) == (0, 1)
    assert decoded.exact == "latent" and decoded.plan.reason == "exact repeat: final latent"
