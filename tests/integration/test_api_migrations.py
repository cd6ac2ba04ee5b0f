"""The Alembic migration and the SQLAlchemy models describe the same schema."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from chorus.db.migrate import upgrade
from chorus.db.models import Base


def test_migrations_match_models(postgres):
    url = postgres.create_database("migration_check")
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = {
            row[0] for row in connection.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
    engine.dispose()
    assert diff == []
    assert {"tenants", "api_keys", "jobs", "cache_entries", "alembic_version"} <= tables
