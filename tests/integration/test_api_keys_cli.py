"""``chorus db upgrade`` and ``chorus keys`` (the real typer app, in-process) against real Postgres and the API."""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from chorus.cli import app
from chorus.config import get_settings
from chorus.db.models import Tenant
from chorus.db.session import session_scope


@pytest.fixture
def chorus(monkeypatch):
    """Run a ``chorus`` command line with CHORUS_DATABASE_URL set to ``database_url``."""

    def run(*args: str, database_url: str):
        monkeypatch.setenv("CHORUS_DATABASE_URL", database_url)
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield run
    get_settings.cache_clear()  # later code must not see this test's settings


def test_db_upgrade_on_a_new_database(postgres, chorus):
    result = chorus("db", "upgrade", database_url=postgres.create_database("cli_upgrade"))
    assert result.exit_code == 0, result.output
    assert "database at head" in result.stdout


def test_keys_create_list_revoke(database_url, http, chorus):
    tenant = f"cli-{secrets.token_hex(4)}"
    created = chorus("keys", "create", "--tenant", tenant, database_url=database_url)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("chorus_")
    try:
        auth = {"Authorization": f"Bearer {key}"}
        assert http.get("/v1/jobs", headers=auth).status_code == 200

        listed = chorus("keys", "list", database_url=database_url).stdout
        line = next(line for line in listed.splitlines() if tenant in line)
        assert f"{key[:15]}…" in line and "active" in line and key not in listed  # the secret is never shown again

        too_short = chorus("keys", "revoke", "chorus_", database_url=database_url)
        assert too_short.exit_code == 1 and "0 keys match" in too_short.stderr
        revoked = chorus("keys", "revoke", f"{key[:15]}…", database_url=database_url)  # as listed
        assert revoked.exit_code == 0, revoked.output
        # The API trusts a verified key for CHORUS_AUTH_CACHE_S (1 s in tests), then sees the revocation.
        deadline = time.monotonic() + 1 + 5
        while (response := http.get("/v1/jobs", headers=auth)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert response.status_code == 401 and response.json()["error"]["code"] == "revoked_api_key"
    finally:
        with session_scope(database_url) as session:
            session.execute(delete(Tenant).where(Tenant.name == tenant))
