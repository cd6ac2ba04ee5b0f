"""Tenants: who owns jobs, keys and (private) cache entries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from chorus.db.models import Tenant


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    """The tenant called ``name``, created if missing (safe under concurrent calls)."""
    session.execute(
        insert(Tenant)
        .values(name=name, cache_shared=False, webhook_secrets=[])
        .on_conflict_do_nothing(index_elements=[Tenant.name])
    )
    return session.scalars(select(Tenant).where(Tenant.name == name)).one()
