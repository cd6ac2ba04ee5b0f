"""One trace through the cache session on both backends: Postgres + pgvector with S3 over HTTP (what the
worker runs) and in memory (what ``chorus bench`` runs) give the same plans, token counts and frames.

The policy reuses edits at 4 steps here (min_edit_steps=1, Stage 2 on half the steps), so the trace
exercises every plan: a miss, a replay, a seed variant, an edit with a Stage-2 region and an unrelated
prompt. The model is a random Wan of a unique id: its namespace matches no other test's rows.
"""

from __future__ import annotations

import secrets
import uuid

import numpy as np
import pytest
import torch
from sqlalchemy import create_engine, delete

from chorus.cache.backends.memory import MemoryBackend
from chorus.cache.backends.postgres import PostgresBackend
from chorus.cache.embedder import MiniLMEmbedder
from chorus.db.models import CacheEntry
from chorus.reuse.plan import ReusePolicy
from chorus.reuse.region import RegionConfig
from chorus.reuse.session import CacheJob, DenoiseStats, GenerationRequest, ReuseCache, ReuseConfig, Role
from chorus.storage.s3 import S3Store
from tests.fixtures.random_wan import random_wan_adapter
from tests.fixtures.services import S3_BUCKET

TRACE = [  # (prompt, seed, remix of the trace's n-th job)
    ("a red square moving right", 0, None),
    ("a red square moving right", 0, None),  # replay
    ("a red square moving right", 1, None),  # seed variant
    ("a blue square moving right", 0, None),  # edit
    ("a green triangle moving up on a black background", 0, None),  # unrelated
    ("a red square moving left on a white background", 0, 0),  # remix of the first: no similarity lookup
]
# A random model's maps are nearly flat: keep the top of them as the region, whatever their contrast.
CONFIG = ReuseConfig(
    policy=ReusePolicy(min_edit_steps=1, stage2_sigma=0.5, seed_variant_sigma=0.75, min_similarity=0.7),
    region=RegionConfig(threshold=0.8, margin=(0, 0, 0), flat_contrast=0.0),
)


def run_trace(cache: ReuseCache, adapter, tenant: str) -> list[tuple[dict, int, np.ndarray, Role]]:
    out, keys = [], []
    for prompt, seed, remix in TRACE:
        keys.append(str(uuid.uuid4()))  # a job's id
        request = GenerationRequest(prompt=prompt, seed=seed)
        job = CacheJob(keys[-1], request, tenant, remix_of=None if remix is None else keys[remix])
        stats = DenoiseStats()
        session = cache.open(adapter, [job])
        [frames] = session.denoise(stats=stats)
        frames = frames.numpy()
        session.settle({job.key})
        plan = {k: v for k, v in job.plan.to_dict().items() if k != "source_id"}  # entry ids differ by backend
        out.append((plan, stats.tokens, frames, job.role))
    return out


@pytest.fixture
def adapter(tmp_path):
    return random_wan_adapter(tmp_path / f"trace-{secrets.token_hex(4)}")


def test_one_trace_gives_the_same_plans_tokens_and_frames_on_both_backends(
    adapter, database_url, settings, s3_endpoint, tenant
):
    torch.manual_seed(0)
    embedder = MiniLMEmbedder()
    store = S3Store(S3_BUCKET, prefix=f"session-{secrets.token_hex(4)}", endpoint_url=s3_endpoint)
    service = PostgresBackend.from_settings(settings, store)
    try:
        on_postgres = run_trace(ReuseCache(service, embedder, CONFIG), adapter, str(tenant.tenant_id))
    finally:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(delete(CacheEntry).where(CacheEntry.domain == str(tenant.tenant_id)))
        engine.dispose()
    in_memory = run_trace(ReuseCache(MemoryBackend(), embedder, CONFIG), adapter, str(tenant.tenant_id))

    roles = [role for *_, role in on_postgres]
    assert roles == [Role.miss, Role.hit, Role.hit, Role.hit, Role.miss, Role.hit]
    assert on_postgres[5][0]["reason"].startswith("remix: edit")
    assert on_postgres[3][0]["stages"]["stage2"] > 0  # the edit ran a Stage-2 region
    for (plan_pg, tokens_pg, frames_pg, _), (plan_mem, tokens_mem, frames_mem, _) in zip(on_postgres, in_memory):
        sim_pg, sim_mem = plan_pg.pop("similarity"), plan_mem.pop("similarity")  # pgvector's and numpy's cosine
        assert plan_pg == plan_mem and (sim_pg is sim_mem is None or sim_pg == pytest.approx(sim_mem, abs=1e-5))
        assert tokens_pg == tokens_mem
        assert np.array_equal(frames_pg, frames_mem)
