"""The Redis lists behind a Celery queue, and the queues Chorus uses."""

from __future__ import annotations

import redis
from kombu.transport.redis import Channel

from chorus.config import Settings


def webhook_queue(settings: Settings) -> str:
    """Webhook events have their own queue, consumed by ``chorus webhooks worker``, not by GPU workers."""
    return f"{settings.queue_name}.webhooks"


def queue_lists(queue: str) -> list[str]:
    """The Redis lists of one Celery queue: priority 0 is the queue's own name."""
    return [queue] + [f"{queue}{Channel.sep}{step}" for step in Channel.priority_steps if step]


def queue_depths(client: redis.Redis, queues: list[str]) -> dict[str, int]:
    """Messages waiting per queue (all its priority lists together)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for name in queue_lists(queue):
            pipe.llen(name)
    lengths = iter(pipe.execute())
    per = len(queue_lists(""))
    return {queue: sum(next(lengths) for _ in range(per)) for queue in queues}
