"""API keys: ``chorus_<random>`` bearer tokens, stored only as sha256 hashes.

A key's first characters (``prefix``) are kept in clear so humans can tell
keys apart in listings and revoke them without ever seeing the secret again.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from chorus.db.models import ApiKey, Tenant

KEY_SCHEME = "chorus_"
_ALPHABET = string.ascii_letters + string.digits  # no punctuation: keys survive double-click selection
_RANDOM_CHARS = 40  # ~238 bits
PREFIX_CHARS = len(KEY_SCHEME) + 8


class AuthError(Exception):
    """A request's credentials were refused; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class KeyInfo:
    id: uuid.UUID
    prefix: str
    tenant: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_SCHEME + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))


def create_key(session: Session, tenant: Tenant) -> tuple[str, ApiKey]:
    """A new key for ``tenant``; the clear key is returned once and never stored."""
    key = generate_key()
    row = ApiKey(tenant_id=tenant.id, prefix=key[:PREFIX_CHARS], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return key, row


def authenticate(session: Session, key: str | None) -> uuid.UUID:
    """The tenant id a bearer key belongs to, or AuthError."""
    if not key:
        raise AuthError("missing_api_key", "send 'Authorization: Bearer <api key>'")
    if not key.startswith(KEY_SCHEME) or len(key) > 200:
        raise AuthError("invalid_api_key", "the API key is not valid")
    row = session.execute(
        select(ApiKey.tenant_id, ApiKey.revoked_at).where(ApiKey.key_hash == hash_key(key))
    ).one_or_none()
    if row is None:
        raise AuthError("invalid_api_key", "the API key is not valid")
    if row.revoked_at is not None:
        raise AuthError("revoked_api_key", "the API key has been revoked")
    return row.tenant_id


def _match(ref: str) -> ColumnElement[bool]:
    """Rows a human reference names: a key id, a full key or a whole display prefix (never a shorter one)."""
    try:
        return ApiKey.id == uuid.UUID(ref)
    except ValueError:
        pass
    if len(ref) > PREFIX_CHARS:
        return ApiKey.key_hash == hash_key(ref)
    return ApiKey.prefix == ref


def revoke_key(session: Session, ref: str) -> ApiKey:
    """Revoke the one key ``ref`` names; LookupError if none or several match."""
    rows = session.scalars(select(ApiKey).where(_match(ref))).all()
    if len(rows) != 1:
        raise LookupError(f"{len(rows)} keys match {ref!r}; give the key id instead")
    key = rows[0]
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    return key


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.execute(
        select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.created_at)
    ).all()
    return [KeyInfo(key.id, key.prefix, name, key.created_at, key.revoked_at) for key, name in rows]
