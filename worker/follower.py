"""A follower's task: wait for the leader of its fingerprint, then be served the leader's video.

The follower computes nothing. Between polls it honours its own cancel and time limit, and mirrors the
leader's progress. If the leader ends without a video (failed, canceled, its video gone), the follower
follows whichever job leads now, or leads itself and runs (``chorus.jobs.coalesce.lead_or_follow``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from chorus.db.models import Job
from chorus.db.session import session_scope
from chorus.jobs.coalesce import LeaderState, lead_or_follow, leader_state
from chorus.storage import ObjectNotFound, ObjectStore
from chorus.storage.links import copy_video
from chorus.video import video_key
from chorus.vocab import JobStatus

log = logging.getLogger(__name__)

POLL_S = 0.5  # a follower's wait adds at most this to the leader's time


def coalesced_metrics(leader: uuid.UUID, steps: int, in_flight: bool = True) -> dict[str, Any]:
    """A follower's ``metrics.cache``: served its leader's video, nothing computed (the leader is always a
    job of the same tenant, so naming it leaks nothing). No cache lookup: not counted in its hit ratio."""
    return {
        "hit": True,
        "role": "hit",
        "looked_up": False,
        "reason": f"coalesced: an identical job {'was in flight' if in_flight else 'was delivered before'}",
        "served": "coalesced",
        "coalesced_with": str(leader),
        "steps_saved": steps,
    }


def copied_output(store: ObjectStore, output: dict[str, Any], job: Job) -> dict[str, Any]:
    """The job's own copy of a delivered video (its own key, so deleting either job leaves the other's)."""
    key = video_key(job.tenant_id, job.id)
    return {**output, "key": key, "bytes": copy_video(store, output["key"], key)}


class Follow:
    """One follower's wait; ``run`` returns True when the follower must now compute itself."""

    def __init__(self, batch: Any, store: ObjectStore, clock: Callable[[], float] = time.perf_counter) -> None:
        self.batch, self.store, self.clock = batch, store, clock
        self.job: Job = batch.jobs[0]
        self.waited = False  # polled the leader running at least once: it was in flight

    def run(self) -> bool:
        while True:
            with session_scope(self.batch.database_url) as session:
                state = leader_state(session, self.job)
                if state.own_status is JobStatus.running and state.leader_progress:
                    session.execute(
                        update(Job)
                        .where(Job.id == self.job.id, Job.status == JobStatus.running)
                        .values(progress=min(99, state.leader_progress))
                    )
            if state.own_status is not JobStatus.running:  # reaped or finished elsewhere
                return False
            if state.cancel_requested:
                self.batch.close([self.job], JobStatus.canceled)
                return False
            if state.leader_status is JobStatus.succeeded and self._served(state):
                return False
            if state.leader_status.is_terminal and self._orphaned():
                return True
            if self.clock() > self.batch.deadline:
                self.batch.fail("timeout", "the job exceeded its time limit waiting for an identical job")
                return False
            self.waited = True
            time.sleep(POLL_S)

    def _served(self, state: LeaderState) -> bool:
        leader = self.job.coalesced_with
        try:
            output = copied_output(self.store, state.leader_output, self.job)
        except ObjectNotFound:
            log.warning("the video of job %s, which job %s followed, is gone", leader, self.job.id)
            return False
        steps = self.job.input["num_inference_steps"]
        self.batch.cache_metrics[self.job.id] = coalesced_metrics(leader, steps, in_flight=self.waited)
        self.batch.close([self.job], JobStatus.succeeded, True, output=output, progress=100)
        return True

    def _orphaned(self) -> bool:
        """The leader ended without a video for us: True when we lead now."""
        old = self.job.coalesced_with
        with session_scope(self.batch.database_url) as session:
            leader = lead_or_follow(session, self.job)
        log.info("job %s: leader %s ended; %s", self.job.id, old, f"now follows {leader}" if leader else "leads")
        return leader is None
