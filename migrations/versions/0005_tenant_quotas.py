"""Tenants get quota overrides: submits per minute and jobs queued + running (None: the deployment's setting).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("submits_per_minute", sa.Integer(), nullable=True))
    op.add_column("tenants", sa.Column("max_active_jobs", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("tenants", "max_active_jobs")
    op.drop_column("tenants", "submits_per_minute")
