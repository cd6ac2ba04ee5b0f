"""``chorus cache``: cache maintenance (against CHORUS_DATABASE_URL and CHORUS_STORE_URL)."""

from __future__ import annotations

import typer

from chorus.config import get_settings
from chorus.db.session import get_engine
from chorus.storage import open_store

app = typer.Typer(no_args_is_help=True, help="The inter-request cache.")


@app.command()
def sweep() -> None:
    """Drop expired entries and evict every domain down to CHORUS_CACHE_BUDGET_BYTES.

    Workers enforce the budget of a domain when they add to it; run this periodically
    (a cron job) so that entries also expire in domains that see no new entries.
    """
    # Imported here: eviction pulls numpy (through the index), which the torch-free API image lacks.
    from chorus.cache.eviction import Evictor

    settings = get_settings()
    evictor = Evictor(get_engine(settings.database_url), open_store(settings), settings.cache_budget_bytes)
    for domain, report in sorted(evictor.sweep().items()):
        state = "skipped (another evictor runs)" if report.skipped else f"{report.freed_bytes} bytes freed"
        typer.echo(f"{domain}: {report.expired} expired, {report.evicted} evicted, {state}")
        for prefix in report.orphaned_prefixes:
            typer.echo(f"  objects left behind under {prefix}", err=True)
