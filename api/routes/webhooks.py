"""Webhooks: a job's delivery attempts, a signed test event, the tenant's signing secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AnyHttpUrl, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.context import ApiKey, Context
from api.errors import error_responses
from chorus.db.models import WebhookDelivery
from chorus.errors import BrokerUnavailable, NotFound
from chorus.jobs.queries import get_job
from chorus.ssrf import check_webhook_url
from chorus.vocab import WEBHOOK_TEST_EVENT
from chorus.webhooks.secrets import rotate_secret, tenant_secrets
from chorus.webhooks.send import WebhookSender, event_message

router = APIRouter(tags=["webhooks"])


class Delivery(BaseModel):
    webhook_id: str = Field(description="the webhook-id header; equal for every attempt of one event")
    event: str
    url: str
    attempt: int
    status_code: int | None = Field(description="null: no HTTP answer (see error)")
    latency_ms: float | None
    error: str | None
    next_retry_at: datetime | None = Field(description="null: no retry follows this attempt")
    created_at: datetime


class DeliveryList(BaseModel):
    data: list[Delivery] = Field(description="oldest first")


class TestRequest(BaseModel):
    url: AnyHttpUrl


class TestQueued(BaseModel):
    webhook_id: str


class Secrets(BaseModel):
    secrets: list[str] = Field(description="whsec_…, newest first; each one signs every webhook (two while rotating)")


@router.get(
    "/v1/jobs/{job_id}/deliveries",
    response_model=DeliveryList,
    responses=error_responses(401, 404),
    summary="A job's webhook delivery attempts",
)
async def deliveries(job_id: str, context: Context, key: ApiKey) -> DeliveryList:
    try:
        jid = uuid.UUID(job_id)
    except ValueError:
        raise NotFound("job_not_found", f"no job {job_id}") from None

    def read(session: Session, tenant_id: uuid.UUID) -> DeliveryList:
        get_job(session, tenant_id, jid)  # 404 unless the tenant's
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.job_id == jid).order_by(WebhookDelivery.created_at)
        )
        return DeliveryList(data=[Delivery.model_validate(row, from_attributes=True) for row in rows])

    return await context.as_tenant(key, read)


@router.post(
    "/v1/webhooks/test",
    status_code=202,
    response_model=TestQueued,
    responses=error_responses(400, 401, 413, 422, 503),
    summary="Send a signed test event",
)
async def send_test(body: TestRequest, context: Context, key: ApiKey) -> TestQueued:
    """Queues a `webhook.test` event to `url`, signed and retried like job events."""
    url = str(body.url)

    def queue(session: Session, tenant_id: uuid.UUID) -> str:
        check_webhook_url(url, context.settings.webhook_allow_private, context.settings.webhook_allow_networks)
        tenant_secrets(session, tenant_id)  # created now, so the caller can read it before the event arrives
        msg_id = f"msg_test_{uuid.uuid4().hex}"
        try:
            WebhookSender(context.settings, context.celery).send(
                event_message(tenant_id, None, url, WEBHOOK_TEST_EVENT, msg_id, {"tenant_id": str(tenant_id)})
            )
        except Exception as exc:
            raise BrokerUnavailable("broker_unavailable", "the webhook queue is unavailable; retry later") from exc
        return msg_id

    return TestQueued(webhook_id=await context.as_tenant(key, queue))


@router.get("/v1/webhooks/secret", response_model=Secrets, responses=error_responses(401), summary="Signing secrets")
async def read_secrets(context: Context, key: ApiKey) -> Secrets:
    """The secrets that sign this tenant's webhooks (one is created on first use)."""
    return Secrets(secrets=await context.as_tenant(key, tenant_secrets))


@router.post(
    "/v1/webhooks/secret/rotate", response_model=Secrets, responses=error_responses(401), summary="Rotate the secret"
)
async def rotate(
    context: Context,
    key: ApiKey,
    keep_previous: Annotated[bool, Query(description="keep signing with the previous secret too")] = True,
) -> Secrets:
    """A new secret signs from now on; the previous one keeps signing too until the next rotation (or
    `keep_previous=false`), so receivers can switch without missing events."""
    return Secrets(secrets=await context.as_tenant(key, lambda s, t: rotate_secret(s, t, keep_previous)))
