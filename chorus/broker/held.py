"""The job ids whose ``chorus.run_job`` message the broker holds: waiting in the queue's lists, or taken by a
worker and not yet acknowledged (kombu's ``unacked`` hash). The lost-message sweep (``chorus.jobs.requeue``)
compares them with Postgres."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import redis

from chorus.broker.app import RUN_JOB_TASK
from chorus.broker.queues import queue_lists

UNACKED_HASH = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, routing key]


def message_job_id(raw: bytes | str) -> str | None:
    """The job id a Celery message for ``chorus.run_job`` carries, or None for any other message."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # an unacked entry: [message, exchange, routing key]
            message = message[0]
        if message.get("headers", {}).get("task") != RUN_JOB_TASK:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass(frozen=True)
class HeldMessages:
    """Job ids with a message in Redis."""

    waiting: set[str]  # in the queue's lists
    taken: set[str]  # taken by a worker, not yet acknowledged (kombu's unacked hash)


def held_messages(client: redis.Redis, queue: str) -> HeldMessages:
    pipe = client.pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.lrange(name, 0, -1)
    pipe.hvals(UNACKED_HASH)
    *lists, unacked = pipe.execute()

    def job_ids(raws: list[bytes]) -> set[str]:
        return {job_id for job_id in map(message_job_id, raws) if job_id is not None}

    return HeldMessages(job_ids([raw for values in lists for raw in values]), job_ids(unacked))


def in_flight(client: redis.Redis, queue: str) -> int:
    """Messages of any task for ``queue``: waiting in its lists, or taken by a worker and not yet acknowledged
    (with acks_late, until the task has returned)."""
    waiting = sum(client.llen(name) for name in queue_lists(queue))
    taken = sum(1 for raw in client.hvals(UNACKED_HASH) if json.loads(raw)[2] == queue)
    return waiting + taken
