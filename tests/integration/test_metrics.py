"""GET /metrics on the real API, Postgres and Redis: queue lists, job counts, worker-recorded histograms."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from chorus.broker.heartbeats import start_heartbeat
from chorus.broker.queues import queue_lists
from chorus.config import Settings
from chorus.metrics.record import JobMetricsRecorder
from chorus.metrics.stats import JobStats


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def scrape(http: httpx.Client) -> dict[tuple[str, tuple], float]:
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_read_queue_lists_jobs_histograms_and_heartbeats(
    hooks_http: httpx.Client, settings: Settings, broker: redis.Redis
) -> None:
    queue = settings.queue_name
    lists = queue_lists(queue)
    # Other tests of this session leave unconsumed messages on the same queue.
    before = sum(broker.llen(name) for name in lists)
    # Stand-in messages on the plain and a priority list, removed before any worker could see them.
    broker.rpush(lists[0], "x", "y")
    broker.rpush(lists[2], "z")
    earlier = scrape(hooks_http)
    lookups_before = earlier.get(("chorus_cache_lookups_total", ()), 0.0)
    encodings_before = [
        earlier.get((f"chorus_text_encoding_cache_{kind}_total", ()), 0.0) for kind in ("hits", "misses")
    ]
    try:
        JobMetricsRecorder(settings).observe(
            [
                JobStats(0.2, 3.0, 2, denoise_seconds=2.0, cache_looked_up=True, cache_hit=True),
                JobStats(40.0, 3.0, 2, cache_looked_up=True, cache_hit=False),
                JobStats(1.0, 3.0, 1, cache_looked_up=False),
            ]
        )
        JobMetricsRecorder(settings).observe_encodings(hits=3, misses=1)
        stop_heartbeat = start_heartbeat(settings, "test-worker")  # its first beat is written before it returns
        samples = scrape(hooks_http)
    finally:
        broker.delete(*lists)
        stop_heartbeat.set()

    assert samples[("chorus_queue_depth", (("queue", queue),))] == before + 3
    assert samples[("chorus_queue_depth", (("queue", f"{queue}.webhooks"),))] == 0
    assert ("chorus_jobs", (("status", "queued"),)) in samples and ("chorus_jobs_running", ()) in samples
    assert samples[("chorus_job_queue_seconds_bucket", (("le", "0.25"),))] >= 1
    assert samples[("chorus_job_queue_seconds_bucket", (("le", "+Inf"),))] >= 2
    assert samples[("chorus_job_denoise_seconds_count", ())] >= 1
    assert samples[("chorus_job_batch_size_bucket", (("le", "2.0"),))] >= 2
    assert 0 < samples[("chorus_cache_hit_ratio", ())] < 1
    assert samples[("chorus_cache_lookups_total", ())] == lookups_before + 2  # a cache-off job looks nothing up
    encodings = [samples[(f"chorus_text_encoding_cache_{kind}_total", ())] for kind in ("hits", "misses")]
    assert encodings == [encodings_before[0] + 3, encodings_before[1] + 1]
    assert samples[("chorus_workers_alive", ())] >= 1
    assert ("chorus_worker_heartbeat_age_seconds", (("worker", "test-worker"),)) in samples
