"""Apply the Alembic migrations from code: test fixtures, the embedded mode and ``chorus db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

# migrations/ sits at the repository root (an editable install or a checkout).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Serialises upgrades when several processes (API, workers) start against one database.
_MIGRATION_LOCK = 0x43484F52  # "CHOR"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision``, in one transaction."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()
