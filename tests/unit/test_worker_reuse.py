"""The worker's cache wiring without services: switches, defaults, and failures that must not fail a job.

Postgres is pointed at a closed port on purpose: every database call fails at once, as when the cache's
database is down.
"""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pytest

from chorus.cache.index import EntryRef, Match
from chorus.cache.namespace import Namespace
from chorus.config import Settings
from chorus.db.models import Job
from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import GenerationRequest
from chorus.engine.plan import ReusePlan, ReusePolicy
from chorus.engine.region import RegionConfig
from chorus.engine.tgaa import TGAAConfig
from chorus.storage import StoreError
from tests.fixtures.cache_runs import make_run
from worker.reuse import JobReuse, WorkerCache

UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"


class FailingStore:
    """Fake object store whose every call fails like an unreachable S3."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise StoreError(f"{name}: store unreachable")

        return fail


def worker_cache(**settings) -> WorkerCache:
    return WorkerCache(Settings(_env_file=None, database_url=UNREACHABLE_DB, **settings), FailingStore())


def job(**cache) -> tuple[Job, GenerationRequest]:
    request = GenerationRequest(prompt="a red square moving right")
    return Job(id=uuid.uuid4(), tenant_id=uuid.uuid4(), input={"prompt": request.prompt, **cache}), request


def test_default_settings_are_the_engines_defaults():
    cache = worker_cache()
    assert cache.policy == ReusePolicy() and cache.region == RegionConfig()
    assert cache.tgaa == TGAAConfig() and cache.capture == CaptureConfig()


@pytest.mark.parametrize(
    ("settings", "cache", "reason"),
    [
        ({"cache_enabled": False}, {}, "off: CHORUS_CACHE_ENABLED is false"),
        ({}, {"cache": {"mode": "off"}}, "off: the job asked for cache mode off"),
    ],
)
def test_a_job_with_the_cache_off_is_a_miss_that_captures_nothing(settings, cache, reason):
    wc = worker_cache(**settings)
    off_job, request = job(**cache)
    [reuse] = wc.prepare(None, [off_job], [request])  # no adapter, no database needed
    assert (reuse.plan.hit, reuse.plan.reason, reuse.admissible) == (False, reason, False)
    assert wc.capture_for([reuse]) is None
    assert reuse.metrics()["looked_up"] is False  # not counted as a lookup in the hit ratio


@pytest.mark.parametrize("steps", [4, 50])
def test_misses_capture_attention_maps_only_at_step_counts_where_edits_are_reused(steps):
    wc = worker_cache()
    miss_job, _ = job()
    request = GenerationRequest(prompt="a red square moving right", num_inference_steps=steps)
    namespace = Namespace("m", "r", "s", steps, 32, 32, 8, 3.0, "e")
    miss = JobReuse(miss_job, request, ReusePlan(steps), namespace=namespace, domain="d", embedding=np.zeros(384))
    maps = CaptureConfig() if steps >= wc.policy.min_edit_steps else CaptureConfig(map_steps=())
    assert miss.admissible and wc.capture_for([miss]) == maps


def test_an_unreachable_cache_database_makes_the_job_a_miss():
    wc = worker_cache()
    auto_job, request = job()
    [reuse] = wc.prepare(None, [auto_job], [request])
    assert reuse.plan.reason == "miss: cache unavailable (OperationalError)" and not reuse.plan.hit
    assert reuse.metrics()["stages"] == {"stage1": 0, "stage2": 0, "stage3": 4}


def test_failed_admission_and_hit_counting_are_logged_not_raised(caplog):
    wc = worker_cache()
    namespace = Namespace("m", "r", "s", 4, 32, 32, 8, 3.0, "e")
    miss_job, request = job()
    miss = JobReuse(miss_job, request, ReusePlan(4), namespace=namespace, domain="d", embedding=np.zeros(384))
    miss.captured = make_run()
    hit_job, _ = job()
    hit = JobReuse(hit_job, request, ReusePlan(4, stage1=2), namespace=namespace, domain="d")
    source = EntryRef(uuid.uuid4(), "d", namespace.key, request.prompt, [], 0, "prefix", 1, [1, 2], None)
    hit.match = Match(source, 0.9, "exact")

    with caplog.at_level(logging.WARNING, logger="worker.reuse"):
        wc.settle([miss, hit], delivered={miss_job.id, hit_job.id})
    failed = {record.getMessage() for record in caplog.records}
    assert failed == {f"cache bookkeeping for job {j.id} failed" for j in (miss_job, hit_job)}
