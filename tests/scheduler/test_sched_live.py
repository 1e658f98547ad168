"""The background loop on the real clock, with tasks due at once (no waiting for schedules)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from ops_center_sdk.context import current_task
from ops_center_sdk.scheduler import Scheduler


async def test_the_loop_wakes_for_a_task_added_while_it_sleeps() -> None:
    scheduler = Scheduler(owner="live-plugin")
    await scheduler.start()
    await scheduler.start()  # a second start changes nothing
    done = asyncio.Event()
    seen: list[tuple[int, str | None]] = []

    async def handler(value: int) -> None:
        seen.append((value, current_task.get()))
        done.set()

    await scheduler.run_in(0, handler, 42, task_name="right-away")
    await asyncio.wait_for(done.wait(), timeout=5)
    await scheduler.stop()
    assert seen == [(42, "right-away")]
    assert scheduler.get_tasks() == []


async def test_a_sync_handler_runs_from_the_loop() -> None:
    scheduler = Scheduler(owner="live-plugin")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def handler() -> None:
        loop.call_soon_threadsafe(done.set)

    await scheduler.run_in(0, handler)
    await scheduler.start()
    await asyncio.wait_for(done.wait(), timeout=5)
    await scheduler.stop()


async def test_stop_cancels_a_run_that_outlives_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler(owner="live-plugin")
    running = asyncio.Event()
    finished = asyncio.Event()
    attempts = 0

    async def stuck_the_first_time() -> None:
        nonlocal attempts
        attempts += 1
        running.set()
        if attempts == 1:
            await asyncio.Event().wait()
        finished.set()

    await scheduler.schedule("0 0 1 1 *", "yearly", stuck_the_first_time)
    await scheduler.run_in(0, stuck_the_first_time, task_name="stuck")
    await scheduler.start()
    await asyncio.wait_for(running.wait(), timeout=5)
    caplog.set_level(logging.WARNING, logger="ops_center_sdk.scheduler")
    await scheduler.stop(grace=0.01)
    assert any("cancelling 1 task run(s)" in r.getMessage() for r in caplog.records)
    # The one-shot run was cut short, not done: it stays pending and runs at the next start.
    stuck = next(task for task in scheduler.get_tasks() if task["name"] == "stuck")
    assert stuck["running"] is False
    assert stuck["failure_count"] == 1
    assert stuck["last_error"] == "CancelledError: the run was cancelled"
    await scheduler.start()
    await asyncio.wait_for(finished.wait(), timeout=5)
    await scheduler.stop()
    assert attempts == 2
    assert [task["name"] for task in scheduler.get_tasks()] == ["yearly"]


async def test_a_scheduler_stopped_then_started_again_still_runs_tasks() -> None:
    scheduler = Scheduler(owner="live-plugin")
    await scheduler.start()
    await scheduler.stop()
    done = asyncio.Event()

    async def handler() -> None:
        done.set()

    await scheduler.run_in(0, handler)
    await scheduler.start()
    await asyncio.wait_for(done.wait(), timeout=5)
    await scheduler.stop()


def test_importing_the_scheduler_does_not_load_croniter_or_storage() -> None:
    code = (
        "import sys\n"
        "from ops_center_sdk.scheduler import Scheduler, ManualClock, parse_cron\n"
        "print(sorted(m for m in ('croniter', 'ops_center_sdk.storage', 'sqlite3')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
