"""A redis-py client for the broker's Redis (queue depth, heartbeats, worker metrics).

Celery names a unix socket ``redis+socket:///path`` (the embedded mode uses one);
redis-py calls the same thing ``unix:///path``.
"""

from __future__ import annotations

from typing import Any

import redis

from chorus.config import Settings


def broker_redis(settings: Settings, **kwargs: Any) -> redis.Redis:
    url = settings.broker_url
    if url.startswith("redis+socket://"):
        url = "unix://" + url.removeprefix("redis+socket://")
    return redis.Redis.from_url(url, **kwargs)
