"""The clocks: ManualClock moves only when told, forward only; SystemClock is real time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ops_center_sdk.scheduler import ManualClock, SystemClock

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    clock.advance(timedelta(minutes=5))
    assert clock.now() == START + timedelta(minutes=5)
    clock.advance(30)
    assert clock.now() == START + timedelta(minutes=5, seconds=30)
    clock.set(datetime(2024, 1, 2, tzinfo=UTC))
    assert clock.now() == datetime(2024, 1, 2, tzinfo=UTC)
    assert clock.time() == datetime(2024, 1, 2, tzinfo=UTC).timestamp()


def test_manual_clock_reports_utc_whatever_zone_it_was_given() -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_manual_clock_reads_a_naive_datetime_as_local_time() -> None:
    naive = datetime(2024, 6, 1, 12, 0)
    assert ManualClock(naive).now() == naive.astimezone(UTC)


def test_manual_clock_refuses_to_go_backwards_naming_both_times() -> None:
    clock = ManualClock(START + timedelta(hours=1))
    with pytest.raises(ValueError, match="backwards") as caught:
        clock.set(START)
    assert "2024-01-01T01:00:00+00:00" in str(caught.value)
    assert "2024-01-01T00:00:00+00:00" in str(caught.value)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == START + timedelta(hours=1)


def test_manual_clock_refuses_what_is_not_a_datetime() -> None:
    with pytest.raises(TypeError, match="datetime"):
        ManualClock("2024-01-01")  # type: ignore[arg-type]


async def test_manual_clock_sleep_ends_when_the_clock_reaches_the_time() -> None:
    clock = ManualClock(START)
    sleeper = asyncio.create_task(clock.sleep_until(START + timedelta(minutes=10)))
    await asyncio.sleep(0)
    clock.advance(timedelta(minutes=9))
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(timedelta(minutes=1))
    await asyncio.wait_for(sleeper, timeout=5)
    await clock.sleep_until(START)  # already past: returns at once


def test_system_clock_reads_the_real_time_in_utc() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
    assert abs(clock.time() - time.time()) < 60


async def test_system_clock_sleep_until_a_past_time_returns_at_once() -> None:
    await asyncio.wait_for(SystemClock().sleep_until(START), timeout=5)
