"""The broker's Redis is reachable by redis-py for both URL forms Celery accepts."""

from __future__ import annotations

from chorus.broker.client import broker_redis
from chorus.config import Settings


def test_celery_unix_socket_url_becomes_a_redis_py_unix_connection() -> None:
    client = broker_redis(Settings(broker_url="redis+socket:///tmp/chorus/redis.socket"))
    assert client.connection_pool.connection_kwargs["path"] == "/tmp/chorus/redis.socket"


def test_tcp_url_keeps_host_port_and_db() -> None:
    kwargs = broker_redis(Settings(broker_url="redis://127.0.0.1:6390/5")).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 5)
