"""A claimed batch as the reuse session sees it: one ``CacheJob`` per job."""

from __future__ import annotations

from chorus.db.models import Job
from chorus.jobs.schemas import ResolvedInput
from chorus.reuse.session import CacheJob, GenerationRequest


def generation_request(stored: ResolvedInput) -> GenerationRequest:
    """The engine's view of a job's input: what it generates, without what the engine does not use
    (model, webhook, cache options, metadata…)."""
    return GenerationRequest(
        prompt=stored.prompt,
        negative_prompt=stored.negative_prompt,
        num_frames=stored.num_frames,
        height=stored.height,
        width=stored.width,
        num_inference_steps=stored.num_inference_steps,
        guidance_scale=stored.guidance_scale,
        seed=stored.seed,
    )


def cache_job(job: Job) -> CacheJob:
    """The job's record in the cache session; ``input.cache.mode`` "off" keeps it out of the cache, and
    ``input.remix_of`` names the source instead of a similarity lookup."""
    stored = ResolvedInput.model_validate(job.input)
    why_off = "the job asked for cache mode off" if stored.cache.mode == "off" else None
    remix_of = str(stored.remix_of) if stored.remix_of else None
    return CacheJob(str(job.id), generation_request(stored), str(job.tenant_id), why_off, remix_of)
