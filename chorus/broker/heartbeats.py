"""Workers' liveness in the broker's Redis: a heartbeat key per worker, refreshed every
``heartbeat_every_s`` (10 s), expiring three beats after the last one. The requeue sweep, the take-over
of a dead worker's jobs and ``/metrics`` read them.

Keys start with the queue name, so deployments (and test sessions) sharing one Redis keep apart.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from chorus.broker.client import broker_redis
from chorus.config import Settings

log = logging.getLogger(__name__)


def heartbeat_ttl_s(settings: Settings) -> float:
    """How long a worker's heartbeat outlives its last beat: three beats, so one slow beat is not a death."""
    return 3 * settings.heartbeat_every_s


def heartbeat_prefix(settings: Settings) -> str:
    return f"{settings.queue_name}:workers:"


def heartbeats_settled(client: redis.Redis, settings: Settings) -> bool:
    """Whether a missing heartbeat means a dead worker: not until Redis has been up for a heartbeat TTL,
    since a restarted Redis has lost every live worker's key too."""
    return int(client.info("server")["uptime_in_seconds"]) >= heartbeat_ttl_s(settings)


def live_workers(client: redis.Redis, settings: Settings) -> dict[str, float]:
    """Worker id -> seconds since its last heartbeat, for workers whose heartbeat has not expired."""
    prefix = heartbeat_prefix(settings)
    names = list(client.scan_iter(match=prefix + "*", count=500))
    beats = client.mget(names) if names else []
    now = time.time()
    return {
        name.decode().removeprefix(prefix): now - float(beat) for name, beat in zip(names, beats) if beat is not None
    }


def start_heartbeat(settings: Settings, worker_id: str, client: redis.Redis | None = None) -> threading.Event:
    """Mark ``worker_id`` alive now, then every ``heartbeat_every_s`` from a daemon thread (the key expires
    three beats after the last one). The first beat is written before this returns: a worker is never
    running but not yet seen. Set the returned event to stop it."""
    client = client or broker_redis(settings, socket_timeout=2, socket_connect_timeout=2)
    stop = threading.Event()
    name = heartbeat_prefix(settings) + worker_id

    def beat_once() -> None:
        try:
            client.set(name, time.time(), px=round(heartbeat_ttl_s(settings) * 1000))
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)

    def beat() -> None:
        while not stop.wait(settings.heartbeat_every_s):
            beat_once()

    beat_once()
    threading.Thread(target=beat, name="chorus-heartbeat", daemon=True).start()
    return stop


# What each pool process's model load came to, so whoever started the worker (the embedded stack) learns at
# once that it cannot serve, and why. Kept a day: long enough to be read, short enough not to pile up.
LOAD_RECORD_TTL_S = 24 * 3600


def load_prefix(settings: Settings) -> str:
    return f"{settings.queue_name}:model-loads:"


def record_load(client: redis.Redis, settings: Settings, worker_id: str, error: str | None) -> None:
    """A pool process loaded its default model (``error`` None) or failed to (the error, as text)."""
    client.set(load_prefix(settings) + worker_id, error or "", ex=LOAD_RECORD_TTL_S)


def model_loads(client: redis.Redis, settings: Settings) -> dict[str, str | None]:
    """Worker id -> its load error, or None where the model loaded."""
    prefix = load_prefix(settings)
    names = list(client.scan_iter(match=prefix + "*", count=500))
    values = client.mget(names) if names else []
    return {
        name.decode().removeprefix(prefix): value.decode() or None
        for name, value in zip(names, values)
        if value is not None
    }


def forget_loads(client: redis.Redis, settings: Settings) -> None:
    """Drop earlier runs' load records (a restarted embedded stack reads only its own worker's)."""
    names = list(client.scan_iter(match=load_prefix(settings) + "*", count=500))
    if names:
        client.delete(*names)
