"""Postgres is the truth about jobs, tenants, keys and cache entries.

- models: SQLAlchemy 2 models (Alembic's ``migrations/`` mirror them)
- session: engine and session factory, one per process and database URL
- migrate: apply the Alembic migrations from code
- cli: ``chorus db``
"""
