"""When to try a webhook again: exponential backoff with full jitter, or the receiver's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retryable(status_code: int | None) -> bool:
    """No answer (timeout, refused), 429 and 5xx are worth another try; other answers are final."""
    return status_code is None or status_code == 429 or status_code >= 500


def backoff_s(attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random) -> float:
    """Delay after failed attempt ``attempt`` (1-based): between half and all of min(cap, base * 2^(attempt-1))."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


def retry_after_s(header: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def next_delay_s(
    attempt: int, retry_after: str | None, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """The receiver's Retry-After wins when given (capped); otherwise the backoff."""
    asked = retry_after_s(retry_after)
    if asked is not None:
        return min(cap_s, asked)
    return backoff_s(attempt, base_s, cap_s, rand)
