"""``Prefer: wait=N`` (RFC 7240): hold a response until the job ends or N seconds pass.

The job row is polled with a backoff (50 ms doubling to 500 ms): one primary-key
read per poll, no coupling to how workers report.
"""

from __future__ import annotations

import time
import uuid

import anyio
from fastapi import Request

from api.context import AppContext

_FIRST_POLL_S, _MAX_POLL_S = 0.05, 0.5


def parse_wait(prefer: str | None, max_wait_s: int) -> int | None:
    """The wait preference in seconds, capped; None if absent. Malformed preferences are ignored (RFC 7240)."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.partition("=")
        if name.strip().lower() == "wait":
            try:
                return max(0, min(int(value.strip().strip('"')), max_wait_s))
            except ValueError:
                return None
    return None


async def wait_for_end(context: AppContext, request: Request, job_id: uuid.UUID, seconds: float) -> None:
    """Return when the job is terminal (or gone), the time is up, or the client disconnected."""
    deadline = time.monotonic() + seconds
    delay = _FIRST_POLL_S
    while (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(min(delay, left))
        delay = min(2 * delay, _MAX_POLL_S)
        status = await context.status(job_id)
        if status is None or status.is_terminal or await request.is_disconnected():
            return
