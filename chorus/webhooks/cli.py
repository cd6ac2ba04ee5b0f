"""``chorus webhooks``: run the delivery worker, rotate a tenant's signing secret."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Signed webhooks: delivery worker and secrets.")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="deliveries in flight at once (threads)")] = 16,
    loglevel: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Deliver webhooks (CPU-only, torch-free): consumes the `<queue>.webhooks` queue."""
    import os

    from chorus.webhooks.tasks import app as celery_app

    argv = ["worker", "--pool", "threads", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    # A node name of its own: several delivery workers on one host, each reachable by remote control.
    celery_app.worker_main([*argv, "--hostname", f"chorus-webhooks-{os.getpid()}@%h", "--without-gossip"])


@app.command()
def rotate(
    tenant: Annotated[str, typer.Argument(help="tenant name")],
    keep_previous: Annotated[bool, typer.Option(help="keep signing with the previous secret too")] = True,
) -> None:
    """Make a new signing secret for TENANT and print the secrets in use, newest first."""
    from sqlalchemy import select

    from chorus.config import get_settings
    from chorus.db.models import Tenant
    from chorus.db.session import session_scope
    from chorus.webhooks.secrets import rotate_secret

    with session_scope(get_settings().database_url) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
        if tenant_id is None:
            typer.echo(f"error: no tenant named {tenant!r}", err=True)
            raise typer.Exit(2)
        for secret in rotate_secret(session, tenant_id, keep_previous):
            typer.echo(secret)
