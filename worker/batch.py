"""A claimed batch as the reuse session sees it: one ``CacheJob`` per job."""

from __future__ import annotations

import dataclasses

from chorus.db.models import Job
from chorus.reuse.session import CacheJob, GenerationRequest

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


def generation_request(job: Job) -> GenerationRequest:
    """The engine's view of a job: its validated input, minus what the engine does not use (webhook, metadata…)."""
    return GenerationRequest(**{k: v for k, v in job.input.items() if k in _REQUEST_FIELDS and v is not None})


def cache_job(job: Job) -> CacheJob:
    """The job's record in the cache session; ``input.cache.mode`` "off" keeps it out of the cache, and
    ``input.remix_of`` names the source instead of a similarity lookup."""
    off = (job.input.get("cache") or {}).get("mode", "auto") == "off"
    why_off = "the job asked for cache mode off" if off else None
    return CacheJob(str(job.id), generation_request(job), str(job.tenant_id), why_off, job.input.get("remix_of"))
