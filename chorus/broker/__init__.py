"""What the broker (Redis, through Celery) holds and how to reach it. Torch-free.

- ``app``: the Celery app and the job task's name; enqueueing a job;
- ``client``: a redis-py client for the broker's Redis;
- ``queues``: the Redis lists behind a Celery queue, their depths, the webhooks queue's name;
- ``heartbeats``: workers' liveness (and readiness) keys;
- ``held``: the job ids whose message the broker holds (waiting or taken), for the lost-message sweep.
"""
