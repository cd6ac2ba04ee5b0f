"""The cache session without services: switches, defaults, and failures that must not fail a job.

The Postgres backend is pointed at a closed port on purpose: every database call fails at once, as when
the cache's database is down.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

import numpy as np
import pytest

from chorus.cache.backends.base import Found
from chorus.cache.backends.memory import MemoryBackend
from chorus.cache.backends.postgres import PostgresBackend
from chorus.cache.embedder import MiniLMEmbedder as RealEmbedder
from chorus.cache.index import EntryRef
from chorus.config import Settings
from chorus.engine.capture import CaptureConfig
from chorus.engine.sampling import make_scheduler
from chorus.engine.tgaa import TGAAConfig
from chorus.fingerprint import request_fingerprint
from chorus.namespace import Namespace
from chorus.reuse.calibration import (
    CalibratedPlan,
    Calibration,
    KindCalibration,
    StepCalibration,
    write_calibration,
)
from chorus.reuse.plan import ReusePlan, ReusePolicy
from chorus.reuse.session import CacheJob, DenoiseStats, GenerationRequest, ReuseCache, ReuseConfig, Role
from chorus.storage import StoreError
from tests.fixtures.cache_runs import make_run
from tests.fixtures.random_wan import random_wan_adapter

UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
NAMESPACE = Namespace("m", "r", "s", 4, 32, 32, 8, 3.0, "e")


class FailingStore:
    """Fake object store whose every call fails like an unreachable S3."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise StoreError(f"{name}: store unreachable")

        return fail


class FakeEmbedder:
    """Fake key embedder (the session must not reach it when the cache is off; when the cache's database is
    down, it runs beside the failing lookups and the database's error is the one reported)."""

    name, dim = "fake", 384

    def embed(self, prompts: list[str]) -> np.ndarray:
        raise AssertionError("not expected to embed")


def unreachable_cache(**settings) -> ReuseCache:
    settings = Settings(_env_file=None, database_url=UNREACHABLE_DB, **settings)
    backend = PostgresBackend.from_settings(settings, FailingStore())
    return ReuseCache(backend, FakeEmbedder(), ReuseConfig.from_settings(settings))


def cache_job(steps: int = 4, off: str | None = None) -> CacheJob:
    request = GenerationRequest(prompt="a red square moving right", num_inference_steps=steps)
    return CacheJob(str(uuid.uuid4()), request, str(uuid.uuid4()), off)


def test_default_settings_are_the_engines_defaults():
    assert ReuseConfig.from_settings(Settings(_env_file=None)) == ReuseConfig()
    assert ReuseConfig().tgaa.alpha == TGAAConfig().alpha == 1.0  # TGAA off in the library and the service


def test_a_setting_overrides_only_its_own_field(monkeypatch):
    monkeypatch.setenv("CHORUS_CACHE_MIN_SIMILARITY", "0.7")
    monkeypatch.setenv("CHORUS_CACHE_CAPTURE_MAP_STRIDE", "[1, 4, 4]")
    monkeypatch.setenv("CHORUS_CACHE_CONTEXT_MAX_MB", "8")
    config = ReuseConfig.from_settings(Settings(_env_file=None))
    defaults = ReuseConfig()
    assert config.policy == replace(defaults.policy, min_similarity=0.7)
    assert config.capture == replace(defaults.capture, map_stride=(1, 4, 4))
    assert config == replace(defaults, policy=config.policy, capture=config.capture, context_max_mb=8.0)


@pytest.mark.parametrize(
    ("settings", "off", "reason"),
    [
        ({"cache_enabled": False}, None, "off: CHORUS_CACHE_ENABLED is false"),
        ({}, "the job asked for cache mode off", "off: the job asked for cache mode off"),
    ],
)
def test_a_job_with_the_cache_off_is_a_miss_that_captures_nothing(settings, off, reason):
    session = unreachable_cache(**settings).open(None, [cache_job(off=off)])  # no adapter, no database needed
    [job] = session.jobs
    assert (job.role, job.plan.hit, job.plan.reason, job.admissible) == (Role.off, False, reason, False)
    assert session.capture() is None
    assert job.metrics()["looked_up"] is False  # not counted as a lookup in the hit ratio


@pytest.mark.parametrize("steps", [4, 50])
def test_misses_capture_attention_maps_only_at_step_counts_where_edits_are_reused(tmp_path, steps):
    cache = unreachable_cache()
    adapter = random_wan_adapter(tmp_path / "tiny")
    session = cache.open(adapter, [])
    miss = cache_job(steps)
    miss.namespace, miss.domain, miss.embedding = NAMESPACE, "d", np.zeros(384)
    session.jobs = [miss]
    policy = cache.config.policy
    expected = policy.capture_for(CaptureConfig(), steps, make_scheduler(adapter, steps).sigmas)
    captured = session.capture()
    assert miss.role is Role.miss and miss.admissible
    assert (captured.latent_steps, captured.map_steps, captured.context_steps) == (
        expected.latent_steps,
        expected.map_steps,
        expected.context_steps,  # the tiny model's full context fits the entry budget
    )
    assert bool(expected.map_steps) == (steps >= policy.min_edit_steps)  # maps only where edits are reused
    if expected.map_steps:
        assert captured.context_stride == (1, 1, 1) and captured.preview_stride == captured.map_stride


def test_an_unreachable_cache_database_makes_the_job_a_miss():
    [job] = unreachable_cache().open(None, [cache_job()]).jobs
    assert job.plan.reason == "miss: cache unavailable (OperationalError)" and job.role is Role.miss
    assert job.metrics()["stages"] == {"stage1": 0, "stage2": 0, "stage3": 4}
    assert job.metrics()["looked_up"] is True


def test_failed_admission_and_hit_counting_are_logged_not_raised(caplog):
    session = unreachable_cache().open(None, [])
    miss, hit = cache_job(), cache_job()
    for job in (miss, hit):
        job.namespace, job.domain, job.embedding = NAMESPACE, "d", np.zeros(384)
    miss.captured = make_run()
    hit.plan = ReusePlan(4, stage1=2)
    source = EntryRef(uuid.uuid4(), "d", NAMESPACE.key, hit.request.prompt, 0, "prefix", 1, None)
    hit.found = Found(str(source.id), 0.9, None, "exact", ref=source)
    session.jobs = [miss, hit]

    with caplog.at_level(logging.WARNING, logger="chorus.reuse.session"):
        assert session.settle(delivered={miss.key, hit.key}) == 0
    failed = {record.getMessage() for record in caplog.records}
    assert failed == {f"cache bookkeeping for job {j.key} failed" for j in (miss, hit)}


@pytest.mark.parametrize("steps", [4, 50])
def test_an_exact_repeat_runs_no_transformer_forward(tmp_path, steps):
    """Same prompt, negative prompt, seed, size, steps and guidance: the stored final latent is the answer."""
    adapter = random_wan_adapter(tmp_path / "tiny")
    cache = ReuseCache(MemoryBackend(), RealEmbedder(), ReuseConfig())
    forwards, frames = [], []
    for key in ("first", "repeat"):
        job = CacheJob(key, GenerationRequest(prompt="a red square moving right", num_inference_steps=steps), "t")
        stats = DenoiseStats()
        session = cache.open(adapter, [job])
        [row] = session.denoise(stats=stats)
        frames.append(row)
        session.settle({key})
        forwards.append(stats.forwards)
    assert forwards == [steps, 0] and job.plan.reason == "replay"
    assert (frames[0].int() - frames[1].int()).abs().max() <= 1  # the stored latent is fp16


def test_a_hit_from_the_shared_pool_names_nothing_of_its_source(tmp_path):
    """Tenant t1 reuses its own run by name; t2 and t3 (opted in to sharing) see only "shared"."""
    adapter = random_wan_adapter(tmp_path / "tiny")
    cache = ReuseCache(MemoryBackend(shared_tenants={"t2", "t3"}), RealEmbedder(), ReuseConfig())

    def run(key: str, tenant: str) -> dict:  # the same request each time: a replay of the first
        job = CacheJob(key, GenerationRequest(prompt="a red square moving right"), tenant)
        session = cache.open(adapter, [job])
        session.denoise()
        session.settle({key})
        return job.metrics()

    run("own-source", "t1")
    own = run("own-repeat", "t1")
    assert own["hit"] and own["source_job_id"] == "own-source" and own["source_id"] is not None
    run("shared-source", "t2")
    shared = run("other-tenant", "t3")
    assert shared["hit"] and shared["source_job_id"] == "shared"
    assert shared["source_id"] is None and shared["similarity"] is None
    assert "shared-source" not in str(shared)


def test_a_remix_whose_source_left_the_cache_runs_in_full_and_says_why(tmp_path):
    adapter = random_wan_adapter(tmp_path / "tiny")
    cache = ReuseCache(MemoryBackend(), RealEmbedder(), ReuseConfig())
    source = CacheJob("source", GenerationRequest(prompt="a red square moving right"), "t")
    session = cache.open(adapter, [source])
    session.denoise()
    session.settle({"source"})
    gone = CacheJob("remix", GenerationRequest(prompt="a red square moving right"), "t", remix_of="evicted-job")
    [job] = cache.open(adapter, [gone]).jobs
    assert job.role is Role.miss and job.plan.reason == "miss: the remixed job's run is not in the cache"
    named = CacheJob("remix-2", GenerationRequest(prompt="a red square moving right"), "t", remix_of="source")
    [job] = cache.open(adapter, [named]).jobs
    assert job.role is Role.hit and job.plan.reason == "remix: replay" and job.found.source_job_id == "source"


def test_a_miss_at_a_step_count_no_plan_reads_maps_or_context_at_stores_only_the_final_latent(tmp_path):
    """At 4 steps no edit plan of the default policy runs (and the random model has no calibration), and a
    seed variant's Stage 1 has no step above its sigma: the entry holds the final latent, nothing else."""
    adapter = random_wan_adapter(tmp_path / "tiny")
    backend = MemoryBackend()
    cache = ReuseCache(backend, RealEmbedder(), ReuseConfig())
    job = CacheJob("miss", GenerationRequest(prompt="a red square moving right", num_inference_steps=4), "t")
    session = cache.open(adapter, [job])
    session.denoise()
    session.settle({"miss"})
    [entry] = backend.entries.values()
    run = entry.run
    assert (run.attn_maps, run.context, run.previews) == ({}, {}, {})
    assert set(run.latents) == {4}


def test_an_exact_repeat_is_never_hidden_by_same_prompt_entries_of_other_seeds(tmp_path):
    adapter = random_wan_adapter(tmp_path / "tiny")
    backend = MemoryBackend()
    cache = ReuseCache(backend, RealEmbedder(), ReuseConfig())

    def run(key: str, seed: int) -> tuple[CacheJob, DenoiseStats]:
        request = GenerationRequest(prompt="a red square moving right", seed=seed)
        job = CacheJob(key, request, "t", fingerprint=request_fingerprint(adapter.card, request), video_key=key)
        stats = DenoiseStats()
        session = cache.open(adapter, [job])
        [frames] = session.denoise(stats=stats)
        if frames is not None:
            backend.videos[key] = frames
        session.settle({key})
        return job, stats

    for seed in range(5):
        run(f"seed-{seed}", seed)
    for seed in range(5):
        repeat, stats = run(f"repeat-{seed}", seed)
        assert stats.forwards == 0 and repeat.exact == "video" and repeat.found.source_job_id == f"seed-{seed}"
        assert backend.videos[f"repeat-{seed}"] is backend.videos[f"seed-{seed}"]


def test_metrics_name_the_kind_of_an_edit(tmp_path):
    """An edit's kinds come from the words that differ; a replay is no edit; the shared pool hides them."""
    adapter = random_wan_adapter(tmp_path / "tiny")
    cache = ReuseCache(MemoryBackend(shared_tenants={"t2", "t3"}), RealEmbedder(), ReuseConfig())

    def run(key: str, tenant: str, prompt: str, remix_of: str | None = None) -> dict:
        job = CacheJob(key, GenerationRequest(prompt=prompt), tenant, remix_of=remix_of)
        session = cache.open(adapter, [job])
        session.denoise()
        session.settle({key})
        return job.metrics()

    assert run("source", "t1", "a red square moving right")["edit_kinds"] is None  # nothing to compare with
    assert run("repeat", "t1", "a red square moving right", remix_of="source")["edit_kinds"] is None
    colour = run("colour", "t1", "a blue square moving right", remix_of="source")
    assert colour["diff"]["kind"] == "edited" and colour["edit_kinds"] == ["appearance"]
    both = run("both", "t1", "a red square moving left on a white background", remix_of="source")
    assert both["edit_kinds"] == ["motion", "scene"]
    run("shared-source", "t2", "a red square moving right")
    shared = run("other-tenant", "t3", "a red circle moving right")
    assert shared["source_job_id"] == "shared" and shared["edit_kinds"] is None


def test_a_lookup_fetches_the_nearby_entry_whose_words_admit_a_plan_not_the_nearest(tmp_path):
    """Two entries near "a red circle moving right": the nearest changes its motion (no calibrated plan), a
    farther one its shape (a calibrated identity plan). The lookup weighs both and plans from the farther one;
    weighing only the nearest misses."""
    adapter = random_wan_adapter(tmp_path / "tiny")
    card = adapter.card
    identity = KindCalibration(CalibratedPlan(1, 0), 48, 0.7)
    kinds = {"identity": identity, "motion": KindCalibration(None, 48, 0.7)}
    write_calibration(card.path, Calibration(card.model_id, card.revision, {4: StepCalibration({}, kinds)}))
    policy = ReusePolicy(min_similarity=0.7)

    def target(candidates: int) -> CacheJob:
        cache = ReuseCache(MemoryBackend(), RealEmbedder(), ReuseConfig(policy=policy, lookup_candidates=candidates))
        for key, prompt in (("shape", "a red square moving right"), ("motion", "a red circle moving left")):
            session = cache.open(adapter, [CacheJob(key, GenerationRequest(prompt=prompt), "t")])
            session.denoise()
            session.settle({key})
        job = CacheJob("target", GenerationRequest(prompt="a red circle moving right"), "t")
        cache.open(adapter, [job])
        return job

    nearest = target(1)
    assert nearest.found.source_job_id == "motion" and not nearest.plan.hit
    assert nearest.plan.reason == "miss: no calibrated plan for a motion edit"
    weighed = target(4)
    assert weighed.found.source_job_id == "shape" and weighed.plan.hit and weighed.plan.stage1 == 1
    assert weighed.plan.reason.startswith("edit, calibrated identity plan")
    assert weighed.found.similarity < nearest.found.similarity
