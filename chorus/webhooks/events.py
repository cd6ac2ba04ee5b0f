"""Which events a job's webhook receives, and their ids (the names themselves are in ``chorus.vocab``)."""

from __future__ import annotations

from typing import Any

from chorus.vocab import WebhookEvent


def wanted(job_input: dict[str, Any], event: WebhookEvent) -> bool:
    """Whether the job's webhook gets ``event``: terminal events always, others when listed in webhook_events."""
    if not job_input.get("webhook"):
        return False
    return event.is_terminal or event in job_input.get("webhook_events", ())


def webhook_id(job_id: object, event: str, progress: int | None = None) -> str:
    """Deterministic, so a duplicate send of one event (a redelivered task) carries the same id: receivers dedupe."""
    suffix = f"_{progress}" if progress is not None else ""
    return f"msg_{job_id}_{event}{suffix}"
