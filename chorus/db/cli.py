"""``chorus db``: schema migrations (against CHORUS_DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer

from chorus.config import get_settings
from chorus.db.migrate import upgrade as run_upgrade

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command()
def upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the Alembic migrations up to REVISION (safe to run from several processes at once)."""
    run_upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")
