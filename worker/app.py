"""Celery entry point: ``celery -A worker.app worker`` (``chorus worker`` wraps it).

The pool's parent process stays torch-free: each pool child imports the runner
(and with it torch) and loads the default model when it starts, so the first
job does not pay for it.
"""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache
from typing import TYPE_CHECKING

from celery.signals import worker_process_init

from chorus.broker.app import RUN_JOB_TASK, make_celery
from chorus.broker.client import broker_redis
from chorus.broker.heartbeats import record_load
from chorus.config import get_settings

if TYPE_CHECKING:
    from worker.runner import JobRunner

# Past the cooperative limit (checked between steps), Celery kills a task stuck inside
# a step; the pool replaces the process and the job is failed as orphaned.
HARD_LIMIT_GRACE_S = 30

settings = get_settings()
app = make_celery(settings)
app.conf.worker_proc_alive_timeout = 300  # a pool child loads the model before it reports alive

log = logging.getLogger(__name__)


def worker_id() -> str:
    """This pool process: its heartbeat's name, and the owner of the jobs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


@lru_cache
def runner() -> JobRunner:
    from chorus.storage import open_store
    from worker.runner import JobRunner

    return JobRunner(settings, open_store(settings), worker_id=worker_id())


@app.task(name=RUN_JOB_TASK, time_limit=settings.job_time_limit_s + HARD_LIMIT_GRACE_S)
def run_job(job_id: str) -> None:
    runner().run(job_id)


@worker_process_init.connect
def preload(**_: object) -> None:
    """Load the default model, and say in Redis how that went (``chorus up`` and ``chorus demo`` wait on it)."""
    error = None
    try:
        runner().preload()
        log.info("model %s loaded", settings.default_model)
    except Exception as exc:  # the worker still serves; jobs for a broken model fail with model_error
        log.exception("could not preload the default model %s", settings.default_model)
        error = f"could not load model {settings.default_model!r}: {type(exc).__name__}: {exc}"
    try:
        with broker_redis(settings, socket_timeout=5, socket_connect_timeout=5) as client:
            record_load(client, settings, worker_id(), error)
    except Exception as exc:  # the broker is down: the pool process still serves once it is back
        log.warning("could not record the model load: %s", exc)
