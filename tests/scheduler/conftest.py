"""Fixtures for the scheduler tests: a scheduler on a clock only the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops_center_sdk.scheduler import ManualClock, Scheduler

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def scheduler(clock: ManualClock) -> Scheduler:
    return Scheduler(owner="test-plugin", clock=clock)
