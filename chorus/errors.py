"""Why a job operation was refused; the API maps each class to one HTTP status."""

from __future__ import annotations


class JobRejected(Exception):
    """Base class; ``code`` is machine-readable, ``message`` is for humans."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(JobRejected):
    """The request breaks a rule the schema alone cannot express (e.g. the model's limits)."""


class NotFound(JobRejected):
    """No such job for this tenant (another tenant's job is not found either)."""


class Conflict(JobRejected):
    """The job's state does not allow the operation, or an idempotency key was reused for another body."""


class BrokerUnavailable(JobRejected):
    """The job could not be enqueued; nothing was kept."""


class RateLimited(JobRejected):
    """Over one of the tenant's quotas; nothing was accepted. ``headers``: the x-ratelimit-* to send."""

    def __init__(self, code: str, message: str, retry_after_s: int, headers: dict[str, str], limit: str):
        super().__init__(code, message)
        self.retry_after_s = retry_after_s
        self.headers = headers
        self.limit = limit  # which: submits_per_minute or max_active_jobs
