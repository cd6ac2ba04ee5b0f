"""``chorus keys``: create, revoke and list API keys (against CHORUS_DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer

from chorus.auth import create_key, list_keys, revoke_key
from chorus.config import get_settings
from chorus.db.session import session_scope
from chorus.tenants import get_or_create_tenant

app = typer.Typer(no_args_is_help=True, help="Manage API keys (stored hashed; a key is shown once).")


@app.command()
def create(tenant: Annotated[str, typer.Option(help="tenant name; created if new")]) -> None:
    """Create a key for TENANT and print it (the only time it is shown)."""
    with session_scope(get_settings().database_url) as session:
        key, row = create_key(session, get_or_create_tenant(session, tenant))
    typer.echo(f"created key {row.id} ({row.prefix}…) for tenant {tenant!r}; store it now:", err=True)
    typer.echo(key)


@app.command()
def revoke(ref: Annotated[str, typer.Argument(help="key id, display prefix (as listed), or the key")]) -> None:
    """Revoke one key; requests with it get 401 revoked_api_key from then on."""
    try:
        with session_scope(get_settings().database_url) as session:
            key = revoke_key(session, ref.rstrip("…"))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked key {key.id} ({key.prefix}…)")


@app.command("list")
def list_() -> None:
    """All keys: id, display prefix, tenant, created, revoked."""
    with session_scope(get_settings().database_url) as session:
        keys = list_keys(session)
    for key in keys:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}…  {key.tenant}  created {key.created_at:%Y-%m-%d %H:%M}  {revoked}")
