"""What is measured, as dataclasses; nothing here knows where the figures go."""

from __future__ import annotations

from dataclasses import dataclass

# Seconds buckets fit video jobs (seconds to tens of minutes); batch sizes count jobs.
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
HISTOGRAMS = {
    "queue_seconds": SECONDS_BUCKETS,
    "run_seconds": SECONDS_BUCKETS,
    "denoise_seconds": SECONDS_BUCKETS,
    "batch_size": BATCH_BUCKETS,
}


@dataclass(frozen=True)
class JobStats:
    """One finished job, as its worker saw it."""

    queue_seconds: float  # created to claimed
    run_seconds: float  # claimed to finished
    batch_size: int  # jobs that shared its batched forward
    denoise_seconds: float | None = None  # None: it ended before denoising did
    cache_looked_up: bool = False  # cache-off jobs look nothing up
    cache_hit: bool = False

    def histogram_values(self) -> dict[str, float]:
        values = {name: getattr(self, name) for name in HISTOGRAMS}
        return {name: float(value) for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (the last is +Inf), and the sum of the observed values."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]  # one per bound, then +Inf
    total: float

    @property
    def count(self) -> float:
        return self.cumulative[-1]


@dataclass(frozen=True)
class ServiceStats:
    """The service at one moment: queues, jobs, finished jobs' histograms, cache counters, live workers."""

    queue_depths: dict[str, int]  # messages waiting per queue
    jobs_by_status: dict[str, int]
    oldest_queued_age_s: float
    histograms: dict[str, Histogram]
    cache_lookups: int
    cache_hits: int
    text_encoding_hits: int
    text_encoding_misses: int
    worker_heartbeat_ages_s: dict[str, float]  # live workers only
    quota_rejections: dict[tuple[str, str], int]  # (tenant id, limit) -> submits refused with 429

    @property
    def cache_hit_ratio(self) -> float:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else 0.0
