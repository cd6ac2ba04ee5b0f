"""The one call site of the denoising engine: a claimed batch, planned by the cache, denoised with reuse."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from chorus.db.models import Job
from chorus.engine.denoise import DenoiseStats, GenerationRequest, StepCallback
from chorus.engine.staged import generate_with_reuse
from chorus.models.base import VideoModelAdapter
from worker.reuse import JobReuse, WorkerCache

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


def generation_request(job: Job) -> GenerationRequest:
    """The engine's view of a job: its validated input, minus what the engine does not use (webhook, metadata…)."""
    return GenerationRequest(**{k: v for k, v in job.input.items() if k in _REQUEST_FIELDS and v is not None})


@dataclass
class BatchResult:
    videos: list[np.ndarray]  # uint8 frames (F, H, W, 3) per job, in order
    reuses: list[JobReuse]  # per job: its cache plan (for the metrics) and capture (for admission)


def run_batch(
    adapter: VideoModelAdapter,
    jobs: list[Job],
    cache: WorkerCache,
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> BatchResult:
    """Plan each job against the cache, then denoise the same-shape jobs together, each by its plan."""
    reuses = cache.prepare(adapter, jobs, [generation_request(job) for job in jobs])
    out = generate_with_reuse(
        adapter,
        [reuse.request for reuse in reuses],
        [reuse.plan for reuse in reuses],
        [reuse.source for reuse in reuses],
        tgaa=cache.tgaa,
        capture=cache.capture_for(reuses),
        on_step=on_step,
        stats=stats,
    )
    for reuse, captured in zip(reuses, out.captured):
        reuse.captured = captured if reuse.admissible else None
    return BatchResult(list(out.frames.cpu().numpy()), reuses)
