"""The one serialisation of a job, used by API responses and webhook payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.schemas import JobFailure, JobMetrics, JobOutput, JobView, ResolvedInput
from chorus.storage import ObjectStore


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 4) if start and end else None


def _output(job: Job, store: ObjectStore, settings: Settings) -> JobOutput | None:
    if not job.output:
        return None
    expiry = settings.presign_expiry_s
    # job.output is written by the worker: {key, width, height, num_frames, fps, bytes}
    fields = {name: job.output[name] for name in ("width", "height", "num_frames", "fps", "bytes")}
    return JobOutput(
        video_url=store.url(job.output["key"], expiry),
        expires_at=datetime.now(UTC) + timedelta(seconds=expiry),
        **fields,
    )


def job_model(job: Job, store: ObjectStore, settings: Settings, queue_position: int | None = None) -> JobView:
    metrics = job.metrics or {}
    return JobView(
        id=job.id,
        status=job.status,
        progress=job.progress,
        queue_position=queue_position,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        input=ResolvedInput.model_validate(job.input),
        output=_output(job, store, settings),
        error=JobFailure(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        metrics=JobMetrics(
            queue_seconds=_seconds(job.created_at, job.started_at),
            run_seconds=_seconds(job.started_at, job.completed_at),
            denoise_seconds=metrics.get("denoise_seconds"),
            batch_size=metrics.get("batch_size"),
            batch_id=metrics.get("batch_id"),
            forwards=metrics.get("forwards"),
            tokens=metrics.get("tokens"),
            cache=metrics.get("cache"),
        ),
    )


def job_view(job: Job, store: ObjectStore, settings: Settings, queue_position: int | None = None) -> dict[str, Any]:
    """The job object as JSON-ready data (e.g. a webhook body)."""
    return job_model(job, store, settings, queue_position).model_dump(mode="json")
