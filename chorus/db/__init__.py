"""Postgres is the truth about jobs, tenants, keys and cache entries."""
