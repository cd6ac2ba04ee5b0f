"""Per-tenant quotas on submits: a sliding minute of submits, and jobs queued + running at once.

Counters live in the broker's Redis and are checked and taken by one Lua script, so any number of API
processes admit exactly the limit. Each tenant has two sorted sets of job ids scored by admission time:

- ``rate``: submits in the last 60 s (older members are dropped on each check);
- ``active``: jobs admitted and maybe not ended yet. Nothing removes a job when it ends (that would take
  a hook in every way a job can end); instead, when the set is full, the ids Postgres knows as ended
  (or never inserted, past a grace) are removed and the check is made once more. The set never
  undercounts, so the limit holds; it overcounts only until it is full.

A refused submit takes nothing; an admitted one that is then not created (invalid, replayed, the broker
down) is given back.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from dataclasses import dataclass

import redis
from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from chorus.config import Settings
from chorus.db.models import Job, Tenant
from chorus.errors import BrokerUnavailable, RateLimited

log = logging.getLogger(__name__)

WINDOW_S = 60
# An admitted id Postgres does not know may be a submit still between admission and INSERT: kept this long.
INSERT_GRACE_S = 60

# KEYS: rate set, active set. ARGV: window (ms), rate limit, active limit, job id.
# Returns {refused by: 0 none / 1 rate / 2 active, count after, ms until a rate slot frees}.
# The clock is Redis' own: every API process's admissions are timed in the order they run.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local rate_limit, active_limit = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local rate = redis.call('ZCARD', KEYS[1])
if rate_limit > 0 and rate >= rate_limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, rate, tonumber(oldest[2]) + window - now}
end
local active = redis.call('ZCARD', KEYS[2])
if active_limit > 0 and active >= active_limit then
  return {2, active, 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], now, ARGV[4])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, rate + 1, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class Limits:
    submits_per_minute: int  # 0: none
    max_active_jobs: int  # 0: none


@dataclass(frozen=True)
class Admission:
    """What the x-ratelimit-* headers of an accepted submit say."""

    limits: Limits
    submits: int  # in the current window, this one included
    reset_s: float  # until the oldest of them leaves the window

    def headers(self) -> dict[str, str]:
        return rate_headers(self.limits, self.submits, self.reset_s)


def rate_headers(limits: Limits, submits: int, reset_s: float) -> dict[str, str]:
    """OpenAI's request-rate headers (limits of 0 are no limits, and are not announced)."""
    if not limits.submits_per_minute:
        return {}
    return {
        "x-ratelimit-limit-requests": str(limits.submits_per_minute),
        "x-ratelimit-remaining-requests": str(max(0, limits.submits_per_minute - submits)),
        "x-ratelimit-reset-requests": f"{max(0.0, reset_s):.3f}s",
    }


def rejections_key(settings: Settings) -> str:
    return f"{settings.queue_name}:quota:rejections"


def quota_rejections(client: redis.Redis, settings: Settings) -> dict[tuple[str, str], int]:
    """(tenant id, limit) -> submits refused, counted by every API process since Redis started."""
    counts = client.hgetall(rejections_key(settings))
    return {tuple(field.decode().split(":", 1)): int(count) for field, count in counts.items()}


class Quotas:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self._admit = client.register_script(_ADMIT)
        self._limits: TTLCache = TTLCache(maxsize=10_000, ttl=max(settings.auth_cache_s, 0.001))
        self._lock = threading.Lock()

    def _key(self, kind: str, tenant_id: uuid.UUID) -> str:
        return f"{self.settings.queue_name}:quota:{kind}:{tenant_id}"

    def limits(self, session: Session, tenant_id: uuid.UUID) -> Limits:
        """The tenant's limits, re-read as often as API keys are (CHORUS_AUTH_CACHE_S)."""
        with self._lock:
            cached = self._limits.get(tenant_id)
        if cached is not None:
            return cached
        row = session.execute(
            select(Tenant.submits_per_minute, Tenant.max_active_jobs).where(Tenant.id == tenant_id)
        ).one()
        limits = Limits(
            row.submits_per_minute if row.submits_per_minute is not None else self.settings.quota_submits_per_minute,
            row.max_active_jobs if row.max_active_jobs is not None else self.settings.quota_max_active_jobs,
        )
        with self._lock:
            self._limits[tenant_id] = limits
        return limits

    def admit(self, session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Admission:
        """Take a slot for ``job_id`` or raise RateLimited (then nothing is taken)."""
        limits = self.limits(session, tenant_id)
        try:
            refused, count, wait_ms = self._run(tenant_id, job_id, limits)
            if refused == 2:  # full: drop ended jobs' ids (or another API process just did), then try once more
                self._prune(session, tenant_id)
                refused, count, wait_ms = self._run(tenant_id, job_id, limits)
        except redis.RedisError as exc:  # the counters live in the broker's Redis: without it nothing is queued
            raise BrokerUnavailable("broker_unavailable", "the job queue is unavailable; retry later") from exc
        if refused == 1:
            raise RateLimited(
                "rate_limit_exceeded",
                f"over {limits.submits_per_minute} submits per minute; retry in {math.ceil(wait_ms / 1000)} s",
                retry_after_s=math.ceil(wait_ms / 1000),
                headers=rate_headers(limits, count, wait_ms / 1000),
                limit="submits_per_minute",
            )
        if refused == 2:
            raise RateLimited(
                "too_many_active_jobs",
                f"{count} jobs queued or running, the most allowed; submit again when one has ended",
                retry_after_s=1,
                headers={"x-ratelimit-limit-jobs": str(limits.max_active_jobs), "x-ratelimit-remaining-jobs": "0"},
                limit="max_active_jobs",
            )
        return Admission(limits, count, wait_ms / 1000)

    def count_rejection(self, tenant_id: uuid.UUID, refusal: RateLimited) -> None:
        """A submit answered 429 (for /metrics; counted once it is final: a replay is no rejection)."""
        self.client.hincrby(rejections_key(self.settings), f"{tenant_id}:{refusal.limit}", 1)

    def release(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        """Give back an admitted slot whose job was not created. Best effort: with Redis gone the slot stays
        until the rate window ends and the active set's next prune drops a job that never was."""
        try:
            with self.client.pipeline() as pipe:
                pipe.zrem(self._key("rate", tenant_id), str(job_id))
                pipe.zrem(self._key("active", tenant_id), str(job_id))
                pipe.execute()
        except redis.RedisError:
            log.warning("quota slot of job %s not given back (Redis unavailable)", job_id, exc_info=True)

    def _run(self, tenant_id: uuid.UUID, job_id: uuid.UUID, limits: Limits) -> tuple[int, int, int]:
        keys = [self._key("rate", tenant_id), self._key("active", tenant_id)]
        args = [WINDOW_S * 1000, limits.submits_per_minute, limits.max_active_jobs, str(job_id)]
        refused, count, wait_ms = self._admit(keys=keys, args=args)
        return int(refused), int(count), int(wait_ms)

    def _prune(self, session: Session, tenant_id: uuid.UUID) -> None:
        """Remove the ids of jobs that have ended (or were never inserted)."""
        key = self._key("active", tenant_id)
        admitted = {
            uuid.UUID(member.decode()): score for member, score in self.client.zrange(key, 0, -1, withscores=True)
        }
        statuses = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(admitted))).tuples().all())
        seconds, micros = self.client.time()  # the clock the admissions were scored by
        settled_before = (seconds - INSERT_GRACE_S) * 1000 + micros // 1000
        gone = [
            str(job_id)
            for job_id, admitted_at in admitted.items()
            if (job_id in statuses and statuses[job_id].is_terminal)
            or (job_id not in statuses and admitted_at < settled_before)
        ]
        if gone:
            self.client.zrem(key, *gone)
