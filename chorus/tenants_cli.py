"""``chorus tenants``: list tenants and set one tenant's quotas (against CHORUS_DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from chorus.config import get_settings
from chorus.db.models import Tenant
from chorus.db.session import session_scope

app = typer.Typer(no_args_is_help=True, help="Tenants and their quotas.")
Limit = Annotated[int | None, typer.Option(min=0, help="0: no limit")]


def _shown(override: int | None, default: int) -> str:
    limit = default if override is None else override
    shown = str(limit) if limit else "unlimited"
    return f"{shown} (default)" if override is None else shown


@app.command()
def quota(
    tenant: Annotated[str, typer.Argument(help="tenant name")],
    submits_per_minute: Limit = None,
    max_active_jobs: Limit = None,
    default: Annotated[
        bool, typer.Option("--default", help="back to the deployment's CHORUS_QUOTA_* settings")
    ] = False,
) -> None:
    """Set TENANT's quotas (the options given), or reset both with --default; prints the quotas in force.
    The API applies a change within CHORUS_AUTH_CACHE_S."""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        row = session.scalars(select(Tenant).where(Tenant.name == tenant)).one_or_none()
        if row is None:
            typer.echo(f"no tenant {tenant!r} (chorus keys create --tenant makes one)", err=True)
            raise typer.Exit(2)
        if default:
            row.submits_per_minute = row.max_active_jobs = None
        if submits_per_minute is not None:
            row.submits_per_minute = submits_per_minute
        if max_active_jobs is not None:
            row.max_active_jobs = max_active_jobs
        rate = _shown(row.submits_per_minute, settings.quota_submits_per_minute)
        active = _shown(row.max_active_jobs, settings.quota_max_active_jobs)
    typer.echo(f"{tenant}: submits per minute {rate}, jobs queued or running {active}")


@app.command("list")
def list_() -> None:
    """Every tenant with its quotas."""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        for row in session.scalars(select(Tenant).order_by(Tenant.name)):
            rate = _shown(row.submits_per_minute, settings.quota_submits_per_minute)
            active = _shown(row.max_active_jobs, settings.quota_max_active_jobs)
            typer.echo(f"{row.name}  submits/min {rate}  active jobs {active}  cache shared {row.cache_shared}")
