"""SQLAlchemy 2 models. Alembic migrations in ``migrations/`` mirror these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Enum, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chorus.vocab import JobStatus

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Opt-in to the shared cache pool; otherwise the tenant's entries are private.
    cache_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_secrets: Mapped[list[str]] = mapped_column(JSONType, default=list)  # whsec_…, newest first
    # Quota overrides; None: the deployment's CHORUS_QUOTA_* setting.
    submits_per_minute: Mapped[int | None] = mapped_column(Integer)
    max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown to humans, not secret
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)  # sha256 hex of the full key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_queued_shape", "status", "batch_key", "created_at"),
        Index(
            "uq_jobs_idempotency",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where="idempotency_key IS NOT NULL",
        ),
        # Every claim of a job with a fingerprint looks for a running or delivered job of the same tenant and one.
        Index(
            "ix_jobs_fingerprint",
            "tenant_id",
            "fingerprint",
            postgresql_where="fingerprint IS NOT NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, name="job_status"), default=JobStatus.queued)
    model: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the validated request body, defaults filled in
    # Jobs with equal batch_key (model + shape + steps) can share one batched forward.
    batch_key: Mapped[str] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the body, for Idempotency-Key reuse
    # chorus.fingerprint of the input: equal for jobs that give the same video. None: the job takes no
    # lossless reuse (cache mode off, or a remix, whose source decides its video).
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    coalesced_with: Mapped[uuid.UUID | None] = mapped_column()  # set: a follower waiting for this leader
    progress: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims, kept here not in the broker
    worker_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # object key, sizes, fps, bytes
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    # What the timestamps cannot tell (batch, forwards, tokens, the cache plan): see chorus.jobs.view.
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


EMBEDDING_DIM = 384


class CacheEntry(Base):
    """What a full-compute request left for later, similar requests to reuse.

    Tensors live in the object store under ``object_prefix``; this row is the
    index. A lookup only ever matches rows of the same ``domain`` (a tenant id,
    or "shared" for tenants that opted in) and the same ``namespace`` (hash of
    model, revision, scheduler, steps, resolution, frames, guidance).
    """

    __tablename__ = "cache_entries"
    __table_args__ = (
        Index("ix_cache_entries_domain_namespace", "domain", "namespace"),
        Index("ix_cache_entries_domain_fingerprint", "domain", "fingerprint"),  # exact repeats
        Index(
            "ix_cache_entries_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    domain: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(64))
    namespace_info: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the fields hashed into namespace
    source_job_id: Mapped[uuid.UUID | None] = mapped_column()
    prompt: Mapped[str] = mapped_column(Text)
    embedding = mapped_column(Vector(EMBEDDING_DIM), nullable=False)
    seed: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # chorus.fingerprint of the run's request
    video_key: Mapped[str | None] = mapped_column(String(300))  # the video the run delivered: an exact repeat's
    object_prefix: Mapped[str] = mapped_column(String(300))
    bytes: Mapped[int] = mapped_column(BigInteger)
    steps_stored: Mapped[list[int]] = mapped_column(JSONType)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    steps_saved_total: Mapped[float] = mapped_column(Float, default=0.0)  # sum over hits, for LCBFU
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_hit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One attempt to deliver one webhook event; retries of an event share ``webhook_id``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_job", "job_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))  # None: test event
    event: Mapped[str] = mapped_column(String(50))
    webhook_id: Mapped[str] = mapped_column(String(100))  # the `webhook-id` header, stable across retries
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no HTTP answer (timeout, refused…)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: no retry follows
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
