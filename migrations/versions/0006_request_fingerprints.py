"""Request fingerprints: the exact key of lossless reuse, on jobs (in-flight coalescing) and on cache
entries (exact repeats), with the video an entry's run delivered.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("coalesced_with", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_jobs_fingerprint",
        "jobs",
        ["tenant_id", "fingerprint"],
        postgresql_where=sa.text("fingerprint IS NOT NULL"),
    )
    op.add_column("cache_entries", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.add_column("cache_entries", sa.Column("video_key", sa.String(300), nullable=True))
    op.create_index("ix_cache_entries_domain_fingerprint", "cache_entries", ["domain", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_cache_entries_domain_fingerprint", table_name="cache_entries")
    op.drop_column("cache_entries", "video_key")
    op.drop_column("cache_entries", "fingerprint")
    op.drop_index("ix_jobs_fingerprint", table_name="jobs")
    op.drop_column("jobs", "coalesced_with")
    op.drop_column("jobs", "fingerprint")
