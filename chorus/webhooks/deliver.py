"""One delivery attempt: guard, sign, POST (no redirects), record the attempt, decide on a retry."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, select

from chorus.config import Settings
from chorus.db.models import WebhookDelivery
from chorus.db.session import session_scope
from chorus.errors import InvalidInput
from chorus.ssrf import check_webhook_url
from chorus.webhooks.retry import next_delay_s, retryable
from chorus.webhooks.secrets import tenant_secrets
from chorus.webhooks.signing import signed_headers

log = logging.getLogger(__name__)
GONE = 410  # the receiver asks us to stop: no more events of this job go to this URL


def _endpoint_gone(session, message: dict[str, Any]) -> bool:
    if message["job_id"] is None:
        return False
    return session.scalar(
        select(
            exists().where(
                WebhookDelivery.job_id == uuid.UUID(message["job_id"]),
                WebhookDelivery.url == message["url"],
                WebhookDelivery.status_code == GONE,
            )
        )
    )


def _delivery(message: dict[str, Any], attempt: int, **outcome: Any) -> WebhookDelivery:
    return WebhookDelivery(
        tenant_id=uuid.UUID(message["tenant_id"]),
        job_id=uuid.UUID(message["job_id"]) if message["job_id"] else None,
        event=message["event"],
        webhook_id=message["webhook_id"],
        url=message["url"],
        attempt=attempt,
        **outcome,
    )


def _post(
    http: httpx.Client, message: dict[str, Any], secrets_: list[str]
) -> tuple[int | None, str | None, str | None]:
    """(status code, Retry-After, error); no status code when no HTTP answer came."""
    headers = signed_headers(secrets_, message["webhook_id"], datetime.now(UTC), message["body"])
    try:
        response = http.post(message["url"], content=message["body"].encode(), headers=headers)
    except httpx.HTTPError as exc:
        return None, None, f"{type(exc).__name__}: {exc}"[:500]
    error = None if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, response.headers.get("retry-after"), error


def deliver(
    settings: Settings,
    http: httpx.Client,
    message: dict[str, Any],
    attempt: int,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Make attempt ``attempt`` of ``message`` and record it; returns the delay before the next try, or None."""
    with session_scope(settings.database_url) as session:
        if _endpoint_gone(session, message):
            # Recorded like an attempt, so the job's deliveries say why the event never arrived.
            session.add(_delivery(message, attempt, error=f"not sent: {message['url']} answered 410 for this job"))
            return None
        try:
            secrets_ = tenant_secrets(session, uuid.UUID(message["tenant_id"]))
        except LookupError:  # the tenant (and its jobs) was deleted meanwhile
            log.info("webhook %s dropped: its tenant no longer exists", message["webhook_id"])
            return None
    started = time.perf_counter()
    final = False
    try:
        check_webhook_url(
            message["url"], settings.webhook_allow_private, settings.webhook_allow_networks
        )  # again: DNS may have changed
        status, retry_after, error = _post(http, message, secrets_)
    except InvalidInput as exc:
        status, retry_after, error, final = None, None, exc.message, True  # a forbidden address stays forbidden
    latency_ms = (time.perf_counter() - started) * 1000
    delay = None
    if error is not None and not final and retryable(status) and attempt < settings.webhook_max_attempts:
        delay = next_delay_s(attempt, retry_after, settings.webhook_retry_base_s, settings.webhook_retry_max_s, rand)
    with session_scope(settings.database_url) as session:
        session.add(
            _delivery(
                message,
                attempt,
                status_code=status,
                latency_ms=round(latency_ms, 2),
                error=error,
                next_retry_at=datetime.now(UTC) + timedelta(seconds=delay) if delay is not None else None,
            )
        )
    if error:
        log.info("webhook %s attempt %d to %s: %s", message["webhook_id"], attempt, message["url"], error)
    return delay
