"""Celery entry point: ``celery -A worker.app worker`` (``chorus worker`` wraps it).

The pool's parent process stays torch-free: the runner (and with it torch and
the model) is imported in the child on its first task.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import TYPE_CHECKING

from chorus.config import get_settings
from chorus.queue import RUN_JOB_TASK, make_celery

if TYPE_CHECKING:
    from worker.runner import JobRunner

# Past the cooperative limit (checked between steps), Celery kills a task stuck inside
# a step; the pool replaces the process and the job is failed as orphaned.
HARD_LIMIT_GRACE_S = 30

settings = get_settings()
app = make_celery(settings)


@lru_cache
def runner() -> JobRunner:
    from chorus.storage import open_store
    from worker.runner import JobRunner

    return JobRunner(settings, open_store(settings), worker_id=f"{socket.gethostname()}:{os.getpid()}")


@app.task(name=RUN_JOB_TASK, time_limit=settings.job_time_limit_s + HARD_LIMIT_GRACE_S)
def run_job(job_id: str) -> None:
    runner().run(job_id)
