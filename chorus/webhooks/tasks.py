"""The delivery worker: ``celery -A chorus.webhooks.tasks worker`` (``chorus webhooks worker`` wraps it).

CPU-only and torch-free; a threads pool suits it (the work is waiting on HTTP).
A retry is a new message with a countdown, so attempts never block a thread.
"""

from __future__ import annotations

from typing import Any

import httpx

from chorus.broker.app import make_celery
from chorus.broker.queues import webhook_queue
from chorus.config import get_settings
from chorus.webhooks.deliver import deliver
from chorus.webhooks.send import DELIVER_TASK, WebhookSender

settings = get_settings()
app = make_celery(settings)
app.conf.task_default_queue = webhook_queue(settings)
sender = WebhookSender(settings, app)
# Shared by the pool's threads (httpx.Client is thread-safe); redirects are never followed (SSRF).
http = httpx.Client(follow_redirects=False, timeout=settings.webhook_timeout_s)


@app.task(name=DELIVER_TASK)
def deliver_webhook(message: dict[str, Any], attempt: int = 1) -> None:
    delay = deliver(settings, http, message, attempt)
    if delay is not None:
        sender.send(message, attempt + 1, delay)
