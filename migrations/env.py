"""Alembic environment. The schema's source is chorus.db.models; the revisions mirror it by hand."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from chorus.db.models import Base

target_metadata = Base.metadata


def _database_url() -> str:
    from chorus.config import get_settings

    return context.config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    # chorus.db.migrate passes an open connection (holding the migration lock); the CLI does not.
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_database_url(), poolclass=NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
