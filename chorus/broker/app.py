"""The Celery app shared by the API (to enqueue) and the worker (to run). Torch-free.

Messages carry only the job id; Postgres holds everything else. Delivery is
at-least-once (acks_late), so the task must be idempotent: the worker claims
a job with a conditional update and drops messages for jobs it cannot claim.
"""

from __future__ import annotations

from celery import Celery

from chorus.config import Settings

RUN_JOB_TASK = "chorus.run_job"


def make_celery(settings: Settings) -> Celery:
    app = Celery("chorus", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # a killed worker's job is redelivered, not lost
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        accept_content=["json"],
        task_serializer="json",
    )
    return app


def enqueue_job(app: Celery, job_id: str) -> None:
    app.send_task(RUN_JOB_TASK, args=[job_id])
