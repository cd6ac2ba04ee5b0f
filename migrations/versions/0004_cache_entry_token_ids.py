"""Cache entries stop storing the prompt's token ids: nothing read them (the plan re-tokenizes both
prompts with the model's own tokenizer and cleaning, so offsets and ids always agree).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("cache_entries", "token_ids")


def downgrade() -> None:
    op.add_column("cache_entries", sa.Column("token_ids", JSONB(), nullable=False, server_default="[]"))
    op.alter_column("cache_entries", "token_ids", server_default=None)
