"""Initial schema: pgvector, tenants, api keys, jobs, cache entries.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("cache_shared", sa.Boolean(), nullable=False),
        sa.Column("webhook_secrets", JSONB(), nullable=False),
        _created_at(),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
        _created_at(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", "canceled", name="job_status"),
            nullable=False,
        ),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input", JSONB(), nullable=False),
        sa.Column("batch_key", sa.String(300), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        _created_at(),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output", JSONB(), nullable=True),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("metrics", JSONB(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("run_seconds", sa.Float(), nullable=True),
        sa.Column("video_bytes", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_at"])
    op.create_index("ix_jobs_queued_shape", "jobs", ["status", "batch_key", "created_at"])
    op.create_index(
        "uq_jobs_idempotency",
        "jobs",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("namespace_info", JSONB(), nullable=False),
        sa.Column("source_job_id", sa.Uuid(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("token_ids", JSONB(), nullable=False),
        sa.Column("embedding", Vector(384), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("object_prefix", sa.String(300), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("steps_stored", JSONB(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("steps_saved_total", sa.Float(), nullable=False),
        _created_at(),
        sa.Column("last_hit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cache_entries_domain_namespace", "cache_entries", ["domain", "namespace"])
    op.create_index(
        "ix_cache_entries_embedding_hnsw",
        "cache_entries",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_table("cache_entries")
    op.drop_table("jobs")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    sa.Enum(name="job_status").drop(op.get_bind(), checkfirst=True)
    # The vector extension may be used by other schemas in the database: leave it.
