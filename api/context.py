"""What every request handler shares: settings, the DB session factory, the Celery app, the object store."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import redis
from cachetools import TTLCache
from celery import Celery
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from chorus.auth import authenticate, hash_key
from chorus.broker.app import enqueue_job
from chorus.broker.client import broker_redis
from chorus.cache.layout import delete_objects
from chorus.config import Settings
from chorus.db.models import Job
from chorus.jobs.claim import job_status
from chorus.jobs.quota import Quotas
from chorus.jobs.requeue import sweep
from chorus.storage import ObjectStore
from chorus.storage.links import preview_key
from chorus.vocab import JobStatus
from chorus.webhooks.notify import JobNotifier
from chorus.webhooks.send import WebhookSender

T = TypeVar("T")


@dataclass
class AppContext:
    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery
    store: ObjectStore
    # Verified keys (by hash) -> tenant id, trusted for settings.auth_cache_s; failures are never cached.
    _verified: TTLCache = field(init=False)
    _verified_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    notifier: JobNotifier = field(init=False)
    broker: redis.Redis = field(init=False)  # the broker's Redis, for the requeue sweep, quotas and /metrics
    quotas: Quotas = field(init=False)

    def __post_init__(self) -> None:
        self._verified = TTLCache(maxsize=10_000, ttl=self.settings.auth_cache_s)
        self.notifier = JobNotifier(self.settings, self.store, WebhookSender(self.settings, self.celery))
        self.broker = broker_redis(self.settings, socket_timeout=5, socket_connect_timeout=5)
        self.quotas = Quotas(self.settings, self.broker)

    def enqueue(self, job_id: str) -> None:
        enqueue_job(self.celery, job_id)

    def delete_objects(self, job: Job, cache_prefixes: list[str]) -> None:
        """A deleted job's stored objects: its video, the video's previews, its cache entries' tensors."""
        if job.output:
            video = job.output["key"]
            for key in (video, *(preview_key(video, variant) for variant in job.output.get("previews", ()))):
                self.store.delete(key)
        for prefix in cache_prefixes:
            delete_objects(self.store, prefix)

    def requeue_lost(self) -> list[uuid.UUID]:
        """One sweep for jobs whose message the broker lost (see ``chorus.jobs.requeue``)."""
        with self.sessions() as session:
            return sweep(session, self.broker, self.settings, self.enqueue, self.settings.requeue_interval_s)

    def _authenticate(self, session: Session, key: str | None) -> uuid.UUID:
        digest = hash_key(key or "")
        with self._verified_lock:
            tenant_id = self._verified.get(digest)
        if tenant_id is None:
            tenant_id = authenticate(session, key)
            if self.settings.auth_cache_s > 0:
                with self._verified_lock:
                    self._verified[digest] = tenant_id
        return tenant_id

    def _as_tenant(self, key: str | None, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        # Auth and the work share one session and one thread hop: the hot path stays short.
        with self.sessions() as session:
            tenant_id = self._authenticate(session, key)
            result = work(session, tenant_id, *args)
            session.commit()
            return result

    async def as_tenant(self, key: str | None, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(session, tenant_id, *args)`` for the key's tenant, off the event loop; commits on success."""
        return await run_in_threadpool(self._as_tenant, key, work, args)

    def _status(self, job_id: uuid.UUID) -> JobStatus | None:
        with self.sessions() as session:
            return job_status(session, job_id)

    async def status(self, job_id: uuid.UUID) -> JobStatus | None:
        return await run_in_threadpool(self._status, job_id)


# Dependencies are async on purpose: FastAPI runs sync ones in the thread pool, a hop per request.
async def _context(request: Request) -> AppContext:
    return request.app.state.context


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer chorus_…`")


async def _api_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    return credentials.credentials if credentials else None


Context = Annotated[AppContext, Depends(_context)]
ApiKey = Annotated[str | None, Depends(_api_key)]  # checked inside AppContext.as_tenant, with the work
