"""A claimed batch as the reuse session sees it: one ``CacheJob`` per job."""

from __future__ import annotations

import uuid

from chorus.db.models import Job
from chorus.jobs.schemas import ResolvedInput
from chorus.reuse.session import CacheJob, GenerationRequest
from chorus.video import video_key


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
        lora=(stored.lora.name, stored.lora.scale) if stored.lora else None,
    )


def cache_job(job: Job) -> CacheJob:
    """The job's record in the cache session; ``input.cache.mode`` "off" keeps it out of the cache, and
    ``input.remix_of`` names the source instead of a similarity lookup."""
    stored = ResolvedInput.model_validate(job.input)
    why_off = "the job asked for cache mode off" if stored.cache.mode == "off" else None
    remix_of = str(stored.remix_of) if stored.remix_of else None
    return CacheJob(
        str(job.id),
        generation_request(stored),
        str(job.tenant_id),
        why_off,
        remix_of,
        fingerprint=job.fingerprint,
        video_key=video_key(job.tenant_id, job.id),
    )


def identical_groups(jobs: list[Job]) -> list[list[Job]]:
    """The batch's rows, in batch order: a job that follows another job of the batch (``coalesced_with``,
    set when identical jobs are claimed together) is in that job's row, after it; any other job leads a row."""
    by_id = {job.id: job for job in jobs}
    rows: dict[uuid.UUID, list[Job]] = {}
    for job in jobs:
        lead = job.coalesced_with if job.coalesced_with in by_id else job.id
        row = rows.setdefault(lead, [by_id[lead]])
        if job.id != lead:
            row.append(job)
    return list(rows.values())
