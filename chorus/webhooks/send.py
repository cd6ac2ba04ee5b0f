"""Putting webhook events on their own queue (consumed by ``chorus webhooks worker``, not by GPU workers)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from chorus.broker.app import make_celery
from chorus.broker.queues import webhook_queue
from chorus.config import Settings

DELIVER_TASK = "chorus.deliver_webhook"
log = logging.getLogger(__name__)


def event_message(
    tenant_id: uuid.UUID,
    job_id: uuid.UUID | None,
    url: str,
    event: str,
    msg_id: str,
    data: dict[str, Any],
    openai_style: bool = False,
) -> dict[str, Any]:
    """The task's argument. The body is serialised once here, so every retry sends the very same bytes.

    ``openai_style``: the event as OpenAI sends it (``{"id", "object": "event", "type", "created_at",
    "data"}``), for jobs submitted through /v1/videos; the openai SDK's ``webhooks.unwrap`` reads it."""
    now = datetime.now(UTC)
    if openai_style:
        body = {"id": msg_id, "object": "event", "type": event, "created_at": int(now.timestamp()), "data": data}
    else:
        body = {"type": event, "timestamp": now.isoformat(), "data": data}
    return {
        "tenant_id": str(tenant_id),
        "job_id": str(job_id) if job_id else None,
        "url": url,
        "event": event,
        "webhook_id": msg_id,
        "body": json.dumps(body, separators=(",", ":")),
    }


class WebhookSender:
    def __init__(self, settings: Settings, celery: Celery | None = None) -> None:
        self.celery = celery or make_celery(settings)
        self.queue = webhook_queue(settings)

    def send(self, message: dict[str, Any], attempt: int = 1, delay_s: float | None = None) -> None:
        self.celery.send_task(DELIVER_TASK, args=[message, attempt], queue=self.queue, countdown=delay_s)
