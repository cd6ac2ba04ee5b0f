"""Event names and which of them a job's webhook receives."""

from __future__ import annotations

from typing import Any, Literal

from chorus.db.models import JobStatus

STARTED = "job.started"
PROGRESS = "job.progress"
TEST = "webhook.test"
TERMINAL = {JobStatus.succeeded: "job.succeeded", JobStatus.failed: "job.failed", JobStatus.canceled: "job.canceled"}

JobEvent = Literal["job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"]


def wanted(job_input: dict[str, Any], event: str) -> bool:
    """Whether the job's webhook gets ``event``: terminal events always, others when listed in webhook_events."""
    if not job_input.get("webhook"):
        return False
    return event in TERMINAL.values() or event in job_input.get("webhook_events", ())


def webhook_id(job_id: object, event: str, progress: int | None = None) -> str:
    """Deterministic, so a duplicate send of one event (a redelivered task) carries the same id: receivers dedupe."""
    suffix = f"_{progress}" if progress is not None else ""
    return f"msg_{job_id}_{event}{suffix}"
