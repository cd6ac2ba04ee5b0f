"""The project's shared words: one place for the names that cross module and process boundaries.

Torch-free (the API imports it). Values are the strings stored in Postgres, sent in webhooks and shown
in ``metrics.cache``; the enums are ``StrEnum`` so they compare and serialise as those strings.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """Where one request's denoising step falls in a plan (see ``chorus.reuse.plan``)."""

    full = "full"  # a miss: every step computed, no reuse
    stage1 = "stage1"  # not run: the request starts from the source's latent
    stage2 = "stage2"  # the region's tokens recomputed, the rest taken from the source
    stage3 = "stage3"  # a hit's repair steps, computed in full

    @property
    def computed_in_full(self) -> bool:
        return self in (Stage.full, Stage.stage3)


class JobStatus(enum.StrEnum):
    """A job's place in its state machine (``chorus.jobs``); Postgres stores it as the ``job_status`` enum."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)


class WebhookEvent(enum.StrEnum):
    """The job events a webhook receives (the ``type`` of its body); jobs choose among them in ``webhook_events``."""

    started = "job.started"
    progress = "job.progress"
    succeeded = "job.succeeded"
    failed = "job.failed"
    canceled = "job.canceled"

    @classmethod
    def ended(cls, status: JobStatus) -> WebhookEvent:
        """The event of a terminal status (always sent)."""
        return {JobStatus.succeeded: cls.succeeded, JobStatus.failed: cls.failed, JobStatus.canceled: cls.canceled}[
            status
        ]

    @property
    def is_terminal(self) -> bool:
        return self in (WebhookEvent.succeeded, WebhookEvent.failed, WebhookEvent.canceled)


# The events of a job submitted through /v1/videos, as OpenAI names them (a canceled video is failed).
VIDEO_COMPLETED = "video.completed"
VIDEO_FAILED = "video.failed"

# Not a job event: what `POST /v1/webhooks/test` sends, so a receiver can check its set-up.
WEBHOOK_TEST_EVENT = "webhook.test"
