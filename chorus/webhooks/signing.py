"""Standard Webhooks signatures with the tenant's secrets (two while a rotation is in progress)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(secrets_: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three webhook-* headers; ``webhook-signature`` holds one ``v1,…`` per secret, space-separated."""
    if not secrets_:
        raise ValueError("no webhook secret")
    signatures = " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets_)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
