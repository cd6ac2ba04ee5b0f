"""How a worker process is started (``chorus worker``, the embedded stack, the test fixture)."""

from __future__ import annotations

import os
import socket


def node_name(pid: int) -> str:
    """The Celery node name of the worker whose main process is ``pid`` (for remote control: ping, pause)."""
    return f"chorus-{pid}@{socket.gethostname()}"


def celery_argv(queue: str, pool: str = "prefork", concurrency: int = 1, loglevel: str = "info") -> list[str]:
    """``celery worker`` arguments: one job at a time, no prefetching past it, a unique node name."""
    return [
        "worker",
        "--queues",
        queue,
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--loglevel",
        loglevel,
        "--hostname",
        node_name(os.getpid()),  # several workers per host (tests, --scale) must not share a name
        "--without-gossip",  # workers do not talk to each other; Postgres coordinates them
        "--without-mingle",
    ]


def start(pool: str = "prefork", concurrency: int = 1, loglevel: str = "info") -> None:
    """Run a worker until SIGTERM/SIGINT; a warm shutdown finishes the batch in progress first."""
    from worker.app import app, settings

    app.worker_main(celery_argv(settings.queue_name, pool, concurrency, loglevel))
