"""``chorus queue``: depth, running, oldest queued age, and the worker count the scaling rule asks for.

The rule is KEDA's (deploy/k8s/worker-scaledobject.yaml): workers =
ceil(list length / target per worker), clamped to [min, max]; zero only while
the list is at or below the activation threshold and nothing is running.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Annotated

import typer


def desired_workers(depth: int, running: int, target: int, minimum: int, maximum: int, activation: int = 0) -> int:
    """The replica count KEDA's Redis-list scaler would settle on (running jobs keep at least one worker)."""
    if depth <= activation and running == 0:
        return minimum
    wanted = max(math.ceil(depth / target), 1 if running else 0)
    return max(minimum, min(maximum, wanted))


def queue_command(
    target: Annotated[int, typer.Option(help="queued messages per worker (KEDA listLength)")] = 4,
    minimum: Annotated[int, typer.Option("--min", help="fewest workers (minReplicaCount)")] = 0,
    maximum: Annotated[int, typer.Option("--max", help="most workers (maxReplicaCount)")] = 8,
    activation: Annotated[int, typer.Option(help="depth at which workers start from zero")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print every stat /metrics exports, as JSON")] = False,
) -> None:
    """Show the job queue: depth, running jobs, oldest queued age, and the workers the scaling rule asks for."""

    from chorus.broker.client import broker_redis
    from chorus.config import get_settings
    from chorus.db.session import session_factory
    from chorus.metrics.collect import collect

    settings = get_settings()
    client = broker_redis(settings, socket_timeout=5)
    with session_factory(settings.database_url)() as session:
        stats = collect(settings, session, client)
    depth = stats.queue_depths[settings.queue_name]
    running = stats.jobs_by_status["running"]
    wanted = desired_workers(depth, running, target, minimum, maximum, activation)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(stats) | {"workers_wanted": wanted}, indent=2))
        return
    typer.echo(f"queue:               {settings.queue_name}")
    typer.echo(f"depth (messages):    {depth}")
    typer.echo(f"queued jobs:         {stats.jobs_by_status['queued']}")
    typer.echo(f"running jobs:        {running}")
    typer.echo(f"oldest queued age:   {stats.oldest_queued_age_s:.1f} s")
    typer.echo(f"workers alive:       {len(stats.worker_heartbeat_ages_s)}")
    typer.echo(f"workers wanted:      {wanted}")
