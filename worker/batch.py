"""A claimed batch as the cache session sees it: one ``CacheJob`` per job, and the session that serves them."""

from __future__ import annotations

import dataclasses

from chorus.cache.backends.postgres import PostgresBackend
from chorus.cache.embedder import MiniLMEmbedder
from chorus.cache.session import CacheJob, GenerationRequest, ReuseCache, ReuseConfig
from chorus.config import Settings
from chorus.db.models import Job
from chorus.storage import ObjectStore
from chorus.video import video_key

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


def generation_request(job: Job) -> GenerationRequest:
    """The engine's view of a job: its validated input, minus what the engine does not use (webhook, metadata…)."""
    return GenerationRequest(**{k: v for k, v in job.input.items() if k in _REQUEST_FIELDS and v is not None})


def cache_job(job: Job) -> CacheJob:
    """The job's record in the cache session; ``input.cache.mode`` "off" keeps it out of the cache, and
    ``input.remix_of`` names the source instead of a similarity lookup."""
    off = (job.input.get("cache") or {}).get("mode", "auto") == "off"
    why_off = "the job asked for cache mode off" if off else None
    return CacheJob(
        str(job.id),
        generation_request(job),
        str(job.tenant_id),
        why_off,
        job.input.get("remix_of"),
        fingerprint=job.fingerprint,
        video_key=video_key(job.tenant_id, job.id),
    )


def identical_groups(jobs: list[Job]) -> list[list[Job]]:
    """The batch's jobs grouped by (tenant, fingerprint), oldest first: each group is one computed row.
    Jobs without a fingerprint are groups of their own."""
    groups: dict[object, list[Job]] = {}
    for job in jobs:
        key = (job.tenant_id, job.fingerprint) if job.fingerprint else job.id
        groups.setdefault(key, []).append(job)
    return list(groups.values())


def service_cache(settings: Settings, store: ObjectStore) -> ReuseCache:
    """The worker's cache: the Postgres/pgvector index and the object store, configured from settings."""
    backend = PostgresBackend.from_settings(settings, store)
    return ReuseCache(backend, MiniLMEmbedder(device=settings.device), ReuseConfig.from_settings(settings))
