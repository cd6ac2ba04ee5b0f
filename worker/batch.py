"""The one call site of the denoising engine, so the cache-reuse engine can replace it in one place."""

from __future__ import annotations

import dataclasses

import numpy as np

from chorus.db.models import Job
from chorus.engine.denoise import DenoiseStats, GenerationRequest, StepCallback, generate
from chorus.models.base import VideoModelAdapter

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


def generation_request(job: Job) -> GenerationRequest:
    """The engine's view of a job: its validated input, minus what the engine does not use (webhook, metadata…)."""
    return GenerationRequest(**{k: v for k, v in job.input.items() if k in _REQUEST_FIELDS and v is not None})


def run_batch(
    adapter: VideoModelAdapter,
    jobs: list[Job],
    on_step: StepCallback | None = None,
    stats: DenoiseStats | None = None,
) -> list[np.ndarray]:
    """Denoise same-shape jobs in one batched forward per step; uint8 frames (F, H, W, 3) per job, in order."""
    frames = generate(adapter, [generation_request(job) for job in jobs], on_step=on_step, stats=stats)
    return list(frames.cpu().numpy())
