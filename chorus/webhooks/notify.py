"""Turn committed status changes into webhook events (after the commit, never before): the worker's
side, and the API's for jobs canceled while queued.

Sending only puts a message on the webhooks queue; a broker failure is logged
and swallowed, so webhooks can never fail a job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterable

from sqlalchemy import select

from chorus.config import Settings
from chorus.db.models import Job
from chorus.db.session import session_scope
from chorus.jobs.view import job_view
from chorus.storage import ObjectStore
from chorus.vocab import VIDEO_COMPLETED, VIDEO_FAILED, JobStatus, WebhookEvent
from chorus.webhooks.events import wanted, webhook_id
from chorus.webhooks.send import WebhookSender, event_message

log = logging.getLogger(__name__)


class Throttle:
    """At most one pass per key per ``interval_s``."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[uuid.UUID, float] = {}

    def due(self, keys: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        now = self.clock()
        return [key for key in keys if now - self._last.get(key, -float("inf")) >= self.interval_s]

    def passed(self, key: uuid.UUID) -> None:
        self._last[key] = self.clock()

    def forget(self, key: uuid.UUID) -> None:
        self._last.pop(key, None)


class JobNotifier:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        sender: WebhookSender | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self._sender = sender
        self.throttle = Throttle(settings.webhook_progress_interval_s, clock)

    @property
    def sender(self) -> WebhookSender:
        if self._sender is None:  # made on first use: most batches send nothing
            self._sender = WebhookSender(self.settings)
        return self._sender

    def started(self, jobs: Iterable[Job]) -> None:
        """Jobs just claimed (rows as the claim returned them: already running)."""
        for job in jobs:
            if wanted(job.input, WebhookEvent.started):
                self._send(job, WebhookEvent.started, webhook_id(job.id, WebhookEvent.started))

    def progress(self, jobs: Iterable[Job]) -> None:
        """After a committed progress update; at most one event per job per CHORUS_WEBHOOK_PROGRESS_INTERVAL_S."""
        due = self.throttle.due(job.id for job in jobs if wanted(job.input, WebhookEvent.progress))
        if not due:
            return
        for job in self._reread(due):
            if job.status == JobStatus.running:
                self.throttle.passed(job.id)
                self._send(job, WebhookEvent.progress, webhook_id(job.id, WebhookEvent.progress, job.progress))

    def finished(self, job_ids: Collection[uuid.UUID]) -> None:
        """Jobs whose terminal status was just committed."""
        for job_id in job_ids:
            self.throttle.forget(job_id)
        if not job_ids:
            return
        for job in self._reread(job_ids):
            if not job.status.is_terminal:
                continue
            event = WebhookEvent.ended(job.status)
            if wanted(job.input, event):
                self._send(job, event, webhook_id(job.id, event))

    def _reread(self, job_ids: Collection[uuid.UUID]) -> list[Job]:
        with session_scope(self.settings.database_url) as session:
            return list(session.scalars(select(Job).where(Job.id.in_(job_ids))))

    def _send(self, job: Job, event: WebhookEvent, msg_id: str) -> None:
        try:
            if job.input.get("surface") == "videos":  # OpenAI's video events: only the end, and only the id
                if not event.is_terminal:
                    return
                kind = VIDEO_COMPLETED if event == WebhookEvent.succeeded else VIDEO_FAILED
                message = event_message(
                    job.tenant_id, job.id, job.input["webhook"], kind, msg_id, {"id": str(job.id)}, openai_style=True
                )
            else:
                data = job_view(job, self.store, self.settings)
                message = event_message(job.tenant_id, job.id, job.input["webhook"], event, msg_id, data)
            self.sender.send(message)
        except Exception:  # the broker or the store is down: the job goes on, the event is lost (logged)
            log.exception("could not queue webhook %s of job %s", event, job.id)
