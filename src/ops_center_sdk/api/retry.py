"""When the API client tries a call again, and how long it waits first.

- ``GET``, ``HEAD``, ``PUT``, ``DELETE`` and ``OPTIONS`` are idempotent: they
  are retried on 429, 500, 502, 503 and 504 and on any connection failure.
- ``POST`` and ``PATCH`` are retried only when the server cannot have acted:
  on 429 (the request was refused before it did anything) and when the
  connection could not be opened. A 5xx or a lost answer may hide a write
  that happened, so the error goes back to the caller instead of a second write.
- The wait is exponential with jitter (``backoff * 2**attempt``, capped at
  ``max_backoff``, randomised in its upper half), unless the response has a
  ``Retry-After`` header (seconds or an HTTP date): that wait is honoured as
  given. A ``Retry-After`` longer than ``max_wait`` is not waited for: the call
  fails at once with :class:`~ops_center_sdk.api.errors.RateLimitedError`
  carrying ``retry_after``, so a plugin is not frozen for minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (``"3"`` or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait; see the module's docs."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 30.0

    def backoff_delay(self, attempt: int) -> float:
        """The jittered wait before retry number ``attempt + 1``."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay_after_response(
        self, method: str, response: httpx.Response, attempt: int
    ) -> float | None:
        """The wait before retrying after ``response``, or None to stop here."""
        status = response.status_code
        if attempt >= self.max_retries or status not in RETRY_STATUSES:
            return None
        if status != 429 and method not in IDEMPOTENT_METHODS:
            return None
        asked = parse_retry_after(response.headers.get("retry-after"))
        if asked is None:
            return self.backoff_delay(attempt)
        return asked if asked <= self.max_wait else None

    def delay_after_error(
        self, method: str, error: httpx.TransportError, attempt: int
    ) -> float | None:
        """The wait before retrying after a connection failure, or None to stop here."""
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(
            error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
        )
        if method not in IDEMPOTENT_METHODS and not never_sent:
            return None
        return self.backoff_delay(attempt)
