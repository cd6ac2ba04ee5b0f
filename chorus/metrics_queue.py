"""``chorus queue``: depth, running, oldest queued age, and the worker count the scaling rule asks for.

The rule is KEDA's (deploy/k8s/worker-scaledobject.yaml): workers =
ceil(list length / target per worker), clamped to [min, max]; zero only while
the list is at or below the activation threshold and nothing is running.
"""

from __future__ import annotations

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
) -> None:
    """Show the job queue: depth, running jobs, oldest queued age, and the workers the scaling rule asks for."""

    from chorus.broker_redis import broker_redis
    from chorus.config import get_settings
    from chorus.db.session import session_factory
    from chorus.metrics import job_counts, live_workers, queue_depths

    settings = get_settings()
    client = broker_redis(settings, socket_timeout=5)
    depth = queue_depths(client, [settings.queue_name])[settings.queue_name]
    with session_factory(settings.database_url)() as session:
        counts = job_counts(session)
    running = counts.by_status["running"]
    typer.echo(f"queue:               {settings.queue_name}")
    typer.echo(f"depth (messages):    {depth}")
    typer.echo(f"queued jobs:         {counts.by_status['queued']}")
    typer.echo(f"running jobs:        {running}")
    typer.echo(f"oldest queued age:   {counts.oldest_queued_age_s:.1f} s")
    typer.echo(f"workers alive:       {len(live_workers(client, settings))}")
    typer.echo(f"workers wanted:      {desired_workers(depth, running, target, minimum, maximum, activation)}")
