"""Per-tenant webhook secrets: created on first use, rotated with an overlap (two signatures meanwhile)."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chorus.db.models import Tenant
from chorus.webhooks.signing import new_secret


def tenant_secrets(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """The tenant's secrets, newest first; a first secret is created (and stored) if it has none."""
    current = session.scalar(select(Tenant.webhook_secrets).where(Tenant.id == tenant_id).with_for_update())
    if current is None:
        raise LookupError(f"no tenant {tenant_id}")
    if current:
        return list(current)
    secrets_ = [new_secret()]
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(webhook_secrets=secrets_))
    return secrets_


def rotate_secret(session: Session, tenant_id: uuid.UUID, keep_previous: bool = True) -> list[str]:
    """A new secret first; the previous one is kept (both sign) until the next rotation, unless not asked to."""
    previous = tenant_secrets(session, tenant_id)[:1] if keep_previous else []
    secrets_ = [new_secret(), *previous]
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(webhook_secrets=secrets_))
    return secrets_
