"""Job metrics written once: batch_size, run_seconds, video_bytes columns go.

batch_size stays in the metrics JSON, video_bytes is output.bytes, and queue_seconds and
run_seconds are derived from the timestamps in the job view, so they leave the JSON too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE jobs SET metrics = metrics - 'queue_seconds' - 'run_seconds' WHERE metrics IS NOT NULL")
    op.drop_column("jobs", "batch_size")
    op.drop_column("jobs", "run_seconds")
    op.drop_column("jobs", "video_bytes")


def downgrade() -> None:
    op.add_column("jobs", sa.Column("batch_size", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("run_seconds", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("video_bytes", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE jobs SET batch_size = (metrics->>'batch_size')::int,"
        " run_seconds = EXTRACT(EPOCH FROM completed_at - started_at),"
        " video_bytes = (output->>'bytes')::bigint"
    )
