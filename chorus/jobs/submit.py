"""Creating a job: resolve the input against the model's limits, insert the row, enqueue its id.

Order (Postgres is the truth): the row is committed first, then the id is
enqueued, so a worker never receives a message for a row it cannot see yet.
If the enqueue fails, the row is withdrawn (deleted while still queued) and
the caller gets BrokerUnavailable: nothing is left behind. If the withdrawal
finds the job already claimed, the message did get through and the submit
stands. A process that dies between commit and enqueue leaves a queued row
without a message; it is still picked up as a batch mate of a same-shape job,
and re-enqueueing old queued jobs recovers the rest (claims are conditional,
so a duplicate message is harmless).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from cachetools import TTLCache, cached
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from chorus.config import Settings
from chorus.db.models import Job
from chorus.errors import BrokerUnavailable, Conflict, InvalidInput, NotFound, RateLimited
from chorus.fingerprint import request_fingerprint
from chorus.jobs.quota import Admission, Quotas
from chorus.jobs.schemas import JobInput, ResolvedInput, Surface
from chorus.models.catalog import ModelCard, find_model, list_models
from chorus.namespace import RunShape, batch_key, lora_tag
from chorus.ssrf import check_webhook_url
from chorus.vocab import JobStatus

log = logging.getLogger(__name__)
_JOBS = Job.__table__
# Built once, executed with the row as parameters: the submit hot path skips statement building and
# SQL-cache-key work. Core, not the ORM: only created_at (the database's clock) comes back.
_INSERT = (
    insert(_JOBS)
    .on_conflict_do_nothing(
        index_elements=[_JOBS.c.tenant_id, _JOBS.c.idempotency_key], index_where=text("idempotency_key IS NOT NULL")
    )
    .returning(_JOBS.c.created_at)
)

_MODEL_DEFAULTED = ("model", "num_frames", "height", "width", "num_inference_steps", "guidance_scale", "seed")


@cached(TTLCache(maxsize=64, ttl=10), lock=threading.Lock())
def _card(model_id: str, models_dir: Path) -> ModelCard | None:
    """Cards are re-read every 10 s, not per request: a newly installed model shows up within that."""
    return find_model(model_id, models_dir)


def model_card(model_id: str | None, settings: Settings) -> ModelCard:
    """The card of ``model_id`` (the server's default when None); InvalidInput if it is not installed."""
    model_id = model_id or settings.default_model
    card = _card(model_id, settings.models_dir)
    if card is None:
        installed = ", ".join(list_models(settings.models_dir)) or "none"
        raise InvalidInput("unknown_model", f"no model named {model_id!r} (installed: {installed})")
    return card


def resolve_input(body: JobInput, settings: Settings, surface: Surface = "jobs") -> ResolvedInput:
    """Fill in the model's defaults and check the model's limits (InvalidInput if broken)."""
    card = model_card(body.model, settings)
    model_id = body.model or settings.default_model
    limits = card.limits
    defaults = {
        "model": model_id,
        "num_frames": limits.default_frames,
        "height": limits.default_height,
        "width": limits.default_width,
        "num_inference_steps": limits.default_steps,
        "guidance_scale": limits.default_guidance,
        "seed": secrets.randbelow(2**32),  # drawn once and stored, so a rerun is the same video
    }
    given = {name: getattr(body, name) for name in _MODEL_DEFAULTED if getattr(body, name) is not None}
    resolved = ResolvedInput(**body.model_dump(exclude=set(_MODEL_DEFAULTED)), **(defaults | given), surface=surface)
    problem = limits.check(resolved.num_frames, resolved.height, resolved.width, resolved.num_inference_steps)
    if problem:
        raise InvalidInput(*problem)
    if resolved.lora is not None and resolved.lora.name not in card.adapters:
        known = ", ".join(sorted(card.adapters)) or "none"
        raise NotFound("lora_not_found", f"model {model_id!r} has no LoRA {resolved.lora.name!r} (it has: {known})")
    if resolved.webhook is not None:
        check_webhook_url(str(resolved.webhook), settings.webhook_allow_private, settings.webhook_allow_networks)
    return resolved


def job_fingerprint(spec: ResolvedInput, settings: Settings) -> str | None:
    """The job's key for lossless reuse (exact repeats, in-flight coalescing); None where its video may not
    be another job's: cache mode off asks for its own run, and a remix's video depends on its source."""
    if spec.cache.mode == "off" or spec.remix_of is not None:
        return None
    return request_fingerprint(_card(spec.model, settings.models_dir), spec)


def request_hash(body: JobInput) -> str:
    """Identifies "the same body" for Idempotency-Key: what the client sent, not the defaults filled in."""
    canonical = json.dumps(body.model_dump(mode="json", exclude_unset=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_job(
    session: Session,
    tenant_id: uuid.UUID,
    body: JobInput,
    settings: Settings,
    idempotency_key: str | None = None,
    surface: Surface = "jobs",
    job_id: uuid.UUID | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job (not committed); returns (job, created). A replayed Idempotency-Key returns the
    earlier job with created False, or raises Conflict if it came with another body."""
    spec = resolve_input(body, settings, surface)
    if (
        body.remix_of is not None
        and session.scalar(select(Job.id).where(Job.id == body.remix_of, Job.tenant_id == tenant_id)) is None
    ):  # another tenant's job is not found either
        raise NotFound("remix_source_not_found", f"no job {body.remix_of} to remix")
    digest = request_hash(body) if idempotency_key else None  # only a replay compares it
    fields = {
        "id": job_id or uuid.uuid4(),
        "tenant_id": tenant_id,
        "status": JobStatus.queued,
        "model": spec.model,
        "input": spec.model_dump(mode="json"),
        "batch_key": batch_key(spec.model, RunShape.of(spec), lora_tag(**spec.lora.model_dump()) if spec.lora else ""),
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "fingerprint": job_fingerprint(spec, settings),
        "coalesced_with": None,
        "progress": 0,
        "cancel_requested": False,
        "attempts": 0,
        "metrics": {},
    }
    # One statement for both cases: a concurrent request with the same key cannot slip in between.
    created_at = session.scalars(_INSERT, fields).one_or_none()
    if created_at is not None:
        return Job(**fields, created_at=created_at), True
    earlier = replayed(session, tenant_id, body, idempotency_key)
    if earlier is None:  # it was withdrawn (its enqueue failed) between our two statements
        raise Conflict("idempotency_key_in_use", "a request with this Idempotency-Key is in progress; retry")
    return earlier, False


def replayed(session: Session, tenant_id: uuid.UUID, body: JobInput, idempotency_key: str) -> Job | None:
    """The job an earlier request with this Idempotency-Key created; Conflict if it came with another body."""
    earlier = session.scalars(
        select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key)
    ).one_or_none()
    if earlier is not None and earlier.request_hash != request_hash(body):
        raise Conflict("idempotency_key_reused", "this Idempotency-Key was used with a different request body")
    return earlier


def withdraw(session: Session, job_id: uuid.UUID) -> bool:
    """Delete a job that no worker has claimed; False if one already has."""
    deleted = session.execute(
        delete(Job).where(Job.id == job_id, Job.status == JobStatus.queued).returning(Job.id)
    ).one_or_none()
    return deleted is not None


def submit_job(
    session: Session,
    enqueue: Callable[[str], None],
    tenant_id: uuid.UUID,
    body: JobInput,
    settings: Settings,
    idempotency_key: str | None = None,
    surface: Surface = "jobs",
    quotas: Quotas | None = None,
) -> tuple[Job, bool, Admission | None]:
    """Admit (the tenant's quotas), create, commit, then enqueue (see the module doc for why in this order);
    returns (job, created, the quota admission). A submit over a quota raises RateLimited with nothing kept."""
    job_id = uuid.uuid4()
    try:
        admission = quotas.admit(session, tenant_id, job_id) if quotas else None
    except RateLimited as refusal:  # a retry of an accepted submit is its replay, whatever the quota says now
        earlier = replayed(session, tenant_id, body, idempotency_key) if idempotency_key else None
        if earlier is None:
            quotas.count_rejection(tenant_id, refusal)
            raise
        return earlier, False, None
    try:
        job, created = _create_and_enqueue(
            session, enqueue, tenant_id, body, settings, idempotency_key, surface, job_id
        )
    except Exception:
        if quotas:
            quotas.release(tenant_id, job_id)
        raise
    if not created and quotas:  # a replay: the earlier job holds its own slot
        quotas.release(tenant_id, job_id)
    return job, created, admission


def _create_and_enqueue(
    session: Session,
    enqueue: Callable[[str], None],
    tenant_id: uuid.UUID,
    body: JobInput,
    settings: Settings,
    idempotency_key: str | None,
    surface: Surface,
    job_id: uuid.UUID,
) -> tuple[Job, bool]:
    job, created = create_job(session, tenant_id, body, settings, idempotency_key, surface, job_id)
    session.commit()
    if not created:
        return job, False
    try:
        enqueue(str(job.id))
    except Exception as exc:
        withdrawn = withdraw(session, job.id)
        session.commit()
        if withdrawn:
            log.warning("enqueue of job %s failed, job withdrawn: %s", job.id, exc)
            raise BrokerUnavailable("broker_unavailable", "the job queue is unavailable; retry later") from exc
        log.info("enqueue of job %s reported %s, but a worker already claimed it", job.id, exc)
    return job, True
