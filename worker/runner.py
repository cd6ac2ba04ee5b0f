"""One task, start to end: claim a job and its batch mates, denoise, upload, record each outcome.

A batch is finished job by job: a canceled job leaves the batch at once (it
is marked ``canceled`` between steps while its mates keep denoising; the
rows it occupies in the batched forward are simply discarded), and only
when every job of the batch is gone does the forward stop early.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from chorus.broker.heartbeats import start_heartbeat
from chorus.config import Settings
from chorus.db.models import Job
from chorus.db.session import session_scope
from chorus.jobs.claim import (
    claim,
    claim_batch_mates,
    claim_waiting,
    fail_stale,
    finish,
    job_status,
    report_progress,
)
from chorus.jobs.coalesce import hand_over
from chorus.jobs.recovery import Recovery
from chorus.metrics.record import JobMetricsRecorder
from chorus.metrics.stats import JobStats
from chorus.models.base import VideoModelAdapter
from chorus.models.loader import load_adapter
from chorus.models.lora import ResidentLoras
from chorus.reuse.session import CacheJob, Canceled, DenoiseStats, ReuseCache
from chorus.storage import ObjectStore, StoreError
from chorus.video import upload_video, video_key, video_output
from chorus.vocab import JobStatus
from chorus.webhooks.notify import JobNotifier
from worker.batch import cache_job, identical_groups
from worker.follower import Follow, coalesced_metrics, copied_output

log = logging.getLogger(__name__)

# A live worker stops its jobs at the time limit (between steps), so a job still
# running this long after it is presumed orphaned (see ``fail_stale``).
STALE_GRACE_S = 15  # below worker.app.HARD_LIMIT_GRACE_S, so a killed task's job is reaped on redelivery


class JobTimeout(Exception):
    pass


class Batch:
    """The jobs of one batched forward and what is known about their run so far."""

    def __init__(
        self, jobs: list[Job], settings: Settings, notifier: JobNotifier, recorder: JobMetricsRecorder
    ) -> None:
        self.jobs = jobs
        self.rows = identical_groups(jobs)  # fixed at the claim: the rows of the batched forward
        self.leaders = {row[0].id: row[0] for row in self.rows}  # row -> the job computing it now
        self.notifier = notifier
        self.recorder = recorder
        self.database_url = settings.database_url
        self.started = time.perf_counter()
        self.deadline = self.started + settings.job_time_limit_s
        self.live = {job.id for job in jobs}  # claimed by us and not finished yet
        self.stats = DenoiseStats()
        self.cache_metrics: dict[uuid.UUID, dict[str, Any]] = {}  # per job: its metrics.cache, once planned

    def leader(self, row: list[Job]) -> Job:
        return self.leaders[row[0].id]

    @property
    def follows(self) -> bool:
        """A follower's batch: its job waits for a leader in another batch, or is served a delivered one."""
        return self.rows[0][0].coalesced_with is not None

    def metrics(self, job: Job, denoised: bool) -> dict[str, Any]:
        """The job's ``metrics`` column: what its timestamps cannot tell (queue and run time they can)."""
        metrics: dict[str, Any] = {
            "batch_size": len(self.jobs),
            "batch_id": str(self.jobs[0].id),  # the lead job: groups the jobs that shared forwards
        }
        if denoised:
            cache = self.cache_metrics.get(job.id)
            if cache is not None and cache.get("served") == "coalesced":  # no row of its own in any forward
                metrics.update(denoise_seconds=0.0, forwards=0, tokens=0)
            else:
                metrics.update(
                    denoise_seconds=round(self.stats.denoise_seconds, 4),
                    forwards=self.stats.forwards,  # each forward served the whole batch
                    tokens=self.stats.tokens // len(self.rows),  # this job's share of the video tokens
                )
            if cache is not None:
                metrics["cache"] = cache
        return metrics

    def job_stats(self, job: Job, metrics: dict[str, Any]) -> JobStats:
        cache = metrics.get("cache") or {}
        return JobStats(
            queue_seconds=(job.started_at - job.created_at).total_seconds(),
            run_seconds=time.perf_counter() - self.started,
            batch_size=metrics["batch_size"],
            denoise_seconds=metrics.get("denoise_seconds"),
            cache_looked_up=bool(cache.get("looked_up")),
            cache_hit=bool(cache.get("hit")),
        )

    def close(self, jobs: Iterable[Job], status: JobStatus, denoised: bool = False, **values: Any) -> None:
        """Finish jobs one UPDATE each (their metrics differ); jobs finished elsewhere are left alone."""
        finished: dict[uuid.UUID, JobStats] = {}
        with session_scope(self.database_url) as session:
            for job in jobs:
                metrics = self.metrics(job, denoised)
                if finish(session, [job.id], status, metrics=metrics, **values):
                    finished[job.id] = self.job_stats(job, metrics)
                self.live.discard(job.id)
            if status is not JobStatus.succeeded:
                self.hand_over(session, {job.id for job in jobs})
        self.notifier.finished(finished.keys())  # after the commit
        self.recorder.observe(finished.values())

    def hand_over(self, session: Session, left: set[uuid.UUID]) -> None:
        """A row whose leader left it without a video is led by its next live job, in the same transaction
        as the leader's end (so a follower elsewhere never sees the row without a leader)."""
        for row in self.rows:
            rest = [job for job in row if job.id in self.live]
            if self.leader(row).id in left and rest:
                hand_over(session, rest)
                self.leaders[row[0].id] = rest[0]

    def fail(self, code: str, message: str) -> None:
        log.warning("batch %s failed (%s): %s", self.jobs[0].id, code, message)
        self.close(self.live_jobs(), JobStatus.failed, error_code=code, error_message=message[:2000])

    def live_jobs(self) -> list[Job]:
        return [job for job in self.jobs if job.id in self.live]

    def on_step(self, step: int, total: int) -> bool:
        """After each denoising step: progress for the batch, cancels, the time limit."""
        # 100 only once the video is uploaded.
        with session_scope(self.database_url) as session:
            running = report_progress(session, self.live, min(99, 100 * step // total))
        self.live &= running.keys()  # finished elsewhere (canceled while queued, reaped): drop
        self.notifier.progress(self.live_jobs())
        canceled = [job for job in self.live_jobs() if running[job.id]]
        if canceled:
            log.info("canceled between steps: %s", ", ".join(str(job.id) for job in canceled))
            self.close(canceled, JobStatus.canceled)
        if not self.live:
            return False
        if time.perf_counter() > self.deadline:
            raise JobTimeout
        return True


class JobRunner:
    def __init__(self, settings: Settings, store: ObjectStore, worker_id: str) -> None:
        self.settings = settings
        self.store = store
        self.worker_id = worker_id
        self.cache = ReuseCache.for_service(settings, store)
        self.notifier = JobNotifier(settings, store)
        self.recorder = JobMetricsRecorder(settings)
        self.heartbeat = start_heartbeat(settings, worker_id)
        self.recovery = Recovery(settings, worker_id)
        self.loras: dict[str, ResidentLoras] = {}  # model id -> its adapters loaded here

    def preload(self) -> None:
        load_adapter(self.settings.default_model, self.settings.models_dir, self.settings.device)

    def run(self, job_id: str) -> None:
        batch = self.claim(job_id)
        if batch is None:
            return
        self.notifier.started(batch.jobs)
        try:
            if batch.follows and not Follow(batch, self.store).run():
                return  # served the leader's video, or ended waiting
            self.execute(batch)
        except SQLAlchemyError:
            raise  # the database is gone: nothing can be recorded; fail_stale ends these jobs later
        except Exception as exc:
            log.exception("batch %s crashed", batch.jobs[0].id)
            batch.fail("internal_error", f"{type(exc).__name__}: {exc}")

    def claim(self, job_id: str) -> Batch | None:
        try:
            jid = uuid.UUID(job_id)
        except ValueError:
            log.warning("dropping a message with a malformed job id %r", job_id)
            return None
        requeued: set[uuid.UUID] = set()
        with session_scope(self.settings.database_url) as session:
            reaped = fail_stale(session, self.settings.job_time_limit_s + STALE_GRACE_S)
            if reaped:
                log.warning("failed %d orphaned running jobs: %s", len(reaped), ", ".join(map(str, reaped)))
            lead = claim(session, jid, self.worker_id)
            if lead is not None and lead.coalesced_with is not None:
                jobs = [lead]  # a follower: it waits for its leader alone
            elif lead is not None:
                jobs = [lead, *claim_batch_mates(session, lead, self.settings.max_batch - 1, self.worker_id)]
            else:  # running under a dead worker? then its batch is ours now
                took = self.recovery.take_over(session, jid)
                jobs, requeued = took.taken, took.requeued
                reaped |= took.lost
                if not jobs:
                    log.info("dropping the message for job %s: %s", jid, job_status(session, jid) or "no such job")
        self.notifier.finished(reaped)  # webhooks only after the commit
        self.recovery.resend(requeued)  # after the commit: their claims must find them queued
        if not jobs:
            return None
        log.info("claimed job %s with %d batch mates", jid, len(jobs) - 1)
        return Batch(jobs, self.settings, self.notifier, self.recorder)

    def use_lora(self, adapter: VideoModelAdapter, lora: tuple[str, float] | None) -> None:
        resident = self.loras.get(adapter.model_id)
        if resident is None:
            if lora is None:
                return  # no LoRA was ever loaded on this model
            resident = self.loras[adapter.model_id] = ResidentLoras(
                adapter, self.settings.models_dir, self.settings.lora_resident_max
            )
        resident.use(lora)

    def execute(self, batch: Batch) -> None:
        # Identical jobs of the batch are one row of the forward: its leader computes, the rest follow it.
        adapter = None
        try:
            adapter = load_adapter(batch.jobs[0].model, self.settings.models_dir, self.settings.device)
            jobs = [cache_job(row[0]) for row in batch.rows]
            self.use_lora(adapter, jobs[0].request.lora)  # a batch holds one LoRA and scale (its batch key)
            session = self.cache.open(adapter, jobs)
            videos = session.denoise(on_step=batch.on_step, stats=batch.stats)
        except Canceled:
            return  # every job left the batch between steps
        except JobTimeout:
            batch.fail("timeout", f"the job exceeded its time limit of {self.settings.job_time_limit_s} s")
            return
        except SQLAlchemyError:
            raise
        except Exception as exc:
            log.exception("model error in batch %s", batch.jobs[0].id)
            batch.fail("model_error", f"{type(exc).__name__}: {exc}")
            return
        finally:
            if adapter is not None:
                self.recorder.observe_encodings(*adapter.encodings.unreported())
        delivered: set[str] = set()
        for row, record, frames in zip(batch.rows, session.jobs, videos):
            first = self.store_first(record, row[0], frames, adapter.limits.fps)
            output = self.deliver(batch, row, record.metrics(), first)
            if output is not None:
                record.video_key = output["key"]  # the video an admitted entry points at
                delivered.add(record.key)
        # Only once the jobs are succeeded, and on the cache's thread: the cache's bookkeeping never delays
        # or fails a delivery, and overlaps the claim and the prompt embedding of this worker's next batch.
        settled = session.settle_later(delivered)
        batch_id = batch.jobs[0].id
        settled.add_done_callback(
            lambda done: log.info("cache settled for batch %s (%d admitted)", batch_id, done.result())
        )

    def store_first(self, record: CacheJob, row: Job, frames: Any, fps: int) -> Callable[[Job], dict[str, Any]]:
        """How the first live job of a row's group gets the row's video into the store."""
        if record.exact == "video":  # already copied under the row's own key: nothing to decode or encode
            r = record.request
            stored = video_output(record.video_key, r.num_frames, r.height, r.width, fps, record.video_bytes)
            return lambda job: stored if job is row else copied_output(self.store, stored, job)
        video = frames.cpu().numpy()
        return lambda job: upload_video(self.store, video_key(job.tenant_id, job.id), video, fps)

    def deliver(
        self, batch: Batch, row: list[Job], cache: dict[str, Any], first: Callable[[Job], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """One row's video to every live job of it: ``first`` puts it in the store for the row's leader
        (encoded and uploaded, or already copied), the rest get copies (a canceled leader's row still serves
        its followers, one of which leads it then). Returns the leader's output (None: none was delivered)."""
        output = None
        for job in (job for job in row if job.id in batch.live):
            leader = batch.leader(row)  # the first live job until one is delivered (``Batch.hand_over``)
            steps = job.input["num_inference_steps"]
            batch.cache_metrics[job.id] = cache if job is leader else coalesced_metrics(leader.id, steps)
            # In the store before marking succeeded: a succeeded job always has its video.
            try:
                mine = first(job) if output is None else copied_output(self.store, output, job)
            except StoreError as exc:
                log.warning("upload of job %s failed: %s", job.id, exc)
                batch.close([job], JobStatus.failed, True, error_code="upload_failed", error_message=str(exc)[:2000])
                continue
            batch.close([job], JobStatus.succeeded, True, output=mine, progress=100)
            if output is None:
                output = mine
                self.serve_waiting(job, output)
        return output

    def serve_waiting(self, leader: Job, output: dict[str, Any]) -> None:
        """Queued jobs identical to a job just delivered follow it at once: a copy of its video each."""
        with session_scope(self.settings.database_url) as session:
            waiting = claim_waiting(session, leader, self.worker_id)
        if not waiting:
            return
        batch = Batch(waiting, self.settings, self.notifier, self.recorder)
        self.notifier.started(waiting)
        for job in waiting:
            batch.cache_metrics[job.id] = coalesced_metrics(leader.id, job.input["num_inference_steps"])
            try:
                mine = copied_output(self.store, output, job)
            except StoreError as exc:
                batch.close([job], JobStatus.failed, True, error_code="upload_failed", error_message=str(exc)[:2000])
                continue
            batch.close([job], JobStatus.succeeded, True, output=mine, progress=100)
