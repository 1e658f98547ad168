"""Where the scheduler (and storage expiry) read the time.

:class:`SystemClock` is the real one. :class:`ManualClock` only moves when a
test moves it, so a test can check an hour of cron runs in microseconds.

A naive ``datetime`` handed to a clock is read as the system's local time,
the same rule as ``Scheduler.run_at`` (``datetime.now()`` is naive local
time).
"""

from __future__ import annotations

import asyncio
import time as _time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is read as local time."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}: {moment!r}")
    return moment.astimezone(UTC)


class Clock(ABC):
    """The scheduler's source of time."""

    #: True for a clock that moves only when told to (tests): the scheduler
    #: then runs nothing on its own, the test calls ``run_due``/``advance``.
    manual: bool = False

    @abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""

    def time(self) -> float:
        """The current time in seconds since the epoch (what storage expiry reads)."""
        return self.now().timestamp()

    @abstractmethod
    async def sleep_until(self, when: datetime) -> None:
        """Wait until ``when``; may return early, so callers check the time again."""


class SystemClock(Clock):
    """The machine's clock."""

    #: Longest single sleep, so that a wall-clock jump (suspend, NTP step) is
    #: noticed within this many seconds.
    max_sleep: float = 60.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()

    async def sleep_until(self, when: datetime) -> None:
        delay = (as_utc(when) - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(min(delay, self.max_sleep))


class ManualClock(Clock):
    """A clock that moves only when :meth:`set` or :meth:`advance` is called.

    >>> clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> clock.advance(timedelta(minutes=5))
    >>> clock.now().isoformat()
    '2024-01-01T00:05:00+00:00'

    Moving only changes the time: to run the tasks that came due, use
    ``Scheduler.advance`` (or call ``Scheduler.run_due``). Time never goes
    backwards; trying raises ``ValueError`` naming both times.
    """

    manual = True

    def __init__(self, start: datetime | None = None) -> None:
        """Start at ``start`` (default: the system time when the clock is made).

        A clock made without ``start`` keeps up with the wall clock when it is
        advanced: ``advance(d)`` reaches at least the system time plus ``d``,
        so a test that schedules ``datetime.now() + timedelta(hours=1)`` and
        advances one hour sees the task run. Give ``start`` for exact,
        repeatable times.
        """
        self._follows_wall = start is None
        self._now = as_utc(start) if start is not None else datetime.now(UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (not earlier than now)."""
        target = as_utc(when)
        if target < self._now:
            raise ValueError(
                f"ManualClock cannot move backwards: from {self._now.isoformat()} "
                f"to {target.isoformat()}"
            )
        self._now = target
        self._wake_sleepers()

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta`` (a timedelta or seconds)."""
        self.set(self.time_after(delta))

    def time_after(self, delta: timedelta | float) -> datetime:
        """Where :meth:`advance` with ``delta`` lands (see the wall-clock rule above)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        base = self._now
        if self._follows_wall and step >= timedelta(0):
            base = max(base, datetime.now(UTC))
        return base + step

    async def sleep_until(self, when: datetime) -> None:
        target = as_utc(when)
        if target <= self._now:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (target, waiter)
        self._sleepers.append(entry)
        try:
            await waiter
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def _wake_sleepers(self) -> None:
        for target, waiter in list(self._sleepers):
            loop = waiter.get_loop()
            if target <= self._now and not waiter.done() and not loop.is_closed():
                # set() may be called from any thread: resolve on the waiter's loop.
                loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
