"""Tasks and their history across a restart, on real storage (SQLite files, memory)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops_center_sdk.errors import StorageError
from ops_center_sdk.scheduler import ManualClock, Scheduler
from ops_center_sdk.storage import MemoryStorage, SqliteStorage, Storage

START = datetime(2024, 1, 1, tzinfo=UTC)
NAMESPACE = "_sdk.test-plugin"

# What the module-level handlers below did, by label; module-level so that
# a restarted scheduler can find them again by "module:qualname".
CALLS: list[tuple[str, Any]] = []


async def remember(label: str, *, times: int = 1) -> None:
    CALLS.append((label, times))


async def collect() -> None:
    CALLS.append(("collect", None))


async def explode() -> None:
    raise RuntimeError("upstream down")


GATES: dict[str, asyncio.Event] = {}


async def wait_at_gate(label: str) -> None:
    CALLS.append((label, "started"))
    gate = GATES.pop(label, None)
    if gate is not None:
        await gate.wait()


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    CALLS.clear()


class Process:
    """One run of the plugin process: a scheduler on its own connection to the file."""

    def __init__(self, path: Path, now: datetime) -> None:
        self.backend = SqliteStorage(path)
        self.state = Storage(self.backend, NAMESPACE)
        self.clock = ManualClock(now)
        self.scheduler = Scheduler(owner="test-plugin", clock=self.clock, state=self.state)

    async def shut_down(self) -> None:
        await self.scheduler.stop()
        await self.backend.close()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Callable[[datetime], Process]]:
    started: list[Process] = []

    def boot(now: datetime) -> Process:
        process = Process(tmp_path / "state.db", now)
        started.append(process)
        return process

    yield boot
    for process in started:
        await process.backend.close()  # closing twice is harmless


async def test_a_pending_one_shot_survives_a_restart_and_runs_once(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    task_id = await first.scheduler.run_at(at(60), remember, "report", times=2)
    assert first.scheduler.get_tasks()[0]["persistent"] is True
    await first.shut_down()

    second = processes(at(180))
    await second.scheduler.start()
    [task] = second.scheduler.get_tasks()
    assert (task["id"], task["kind"], task["next_run"]) == (task_id, "once", at(60).isoformat())
    assert await second.scheduler.run_due() == 1
    assert CALLS == [("report", 2)]
    assert second.scheduler.get_tasks() == []
    await second.shut_down()

    third = processes(at(240))
    await third.scheduler.start()
    assert third.scheduler.get_tasks() == []
    assert await third.state.list_keys("scheduler:*") == []
    await third.shut_down()


async def test_a_one_shot_cut_short_by_a_crash_runs_again_after_the_restart(
    processes: Callable[[datetime], Process],
) -> None:
    gate = GATES["job"] = asyncio.Event()
    first = processes(START)
    await first.scheduler.run_in(0, wait_at_gate, "job")
    crashed_run = asyncio.create_task(first.scheduler.run_due())
    for _ in range(100):
        await asyncio.sleep(0)  # let the run start (no clock involved)
    assert CALLS == [("job", "started")]
    # The first process "crashes" here: its run never ends as far as storage knows.
    second = processes(at(10))
    await second.scheduler.start()
    [task] = second.scheduler.get_tasks()
    assert task["next_run"] == START.isoformat()
    assert await second.scheduler.run_due() == 1
    assert CALLS == [("job", "started"), ("job", "started")]
    assert await second.state.list_keys("scheduler:*") == []
    gate.set()
    assert await asyncio.wait_for(crashed_run, timeout=5) == 1


async def test_a_one_shot_not_yet_due_after_restart_waits_for_its_time(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.run_in(timedelta(hours=2), remember, "later")
    await first.shut_down()

    second = processes(at(30))
    await second.scheduler.start()
    assert await second.scheduler.advance(timedelta(minutes=89)) == 0
    assert await second.scheduler.advance(timedelta(minutes=1)) == 1
    assert CALLS == [("later", 1)]
    await second.shut_down()


async def test_missed_cron_occurrences_run_once_and_the_schedule_goes_on(
    processes: Callable[[datetime], Process], caplog: pytest.LogCaptureFixture
) -> None:
    first = processes(START)
    task_id = await first.scheduler.schedule("*/5 * * * *", "collect", collect)
    await first.scheduler.advance(timedelta(minutes=10))
    assert len(CALLS) == 2
    await first.shut_down()

    # Down from 00:10 to 01:00: eleven occurrences missed, coalesced into one run.
    caplog.set_level(logging.INFO, logger="ops_center_sdk.scheduler")
    second = processes(at(60))
    await second.scheduler.start()
    assert second.scheduler.get_tasks() == []  # cron jobs wait to be declared again
    assert await second.scheduler.schedule("*/5 * * * *", "collect", collect) == task_id
    [task] = second.scheduler.get_tasks()
    assert task["run_count"] == 2
    assert task["last_run"] == at(10).isoformat()
    assert task["next_run"] == at(15).isoformat()
    assert any("missed its run" in record.getMessage() for record in caplog.records)

    assert await second.scheduler.run_due() == 1
    assert await second.scheduler.run_due() == 0
    [task] = second.scheduler.get_tasks()
    assert (task["run_count"], task["last_run"]) == (3, at(60).isoformat())
    assert task["next_run"] == at(65).isoformat()
    assert await second.scheduler.advance(timedelta(minutes=10)) == 2
    assert len(CALLS) == 5
    await second.shut_down()


async def test_declared_before_start_the_missed_run_also_happens_once(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.schedule("0 * * * *", "hourly", collect)
    await first.scheduler.advance(timedelta(hours=1))
    await first.shut_down()

    second = processes(at(60 * 5 + 30))
    await second.scheduler.schedule("0 * * * *", "hourly", collect)
    await second.scheduler.start()
    assert await second.scheduler.advance(timedelta(minutes=30)) == 2  # the missed one, then 06:00
    assert second.scheduler.get_tasks()[0]["run_count"] == 3
    await second.shut_down()


async def test_no_missed_run_when_restarted_before_the_next_occurrence(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.schedule("*/5 * * * *", "collect", collect)
    await first.scheduler.advance(timedelta(minutes=5))
    await first.shut_down()

    second = processes(at(7))
    await second.scheduler.start()
    await second.scheduler.schedule("*/5 * * * *", "collect", collect)
    assert await second.scheduler.run_due() == 0
    assert second.scheduler.get_tasks()[0]["next_run"] == at(10).isoformat()
    await second.shut_down()


async def test_failure_and_skip_counts_survive_a_restart(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.schedule("*/5 * * * *", "fragile", explode)
    await first.scheduler.advance(timedelta(minutes=10))
    await first.shut_down()

    second = processes(at(12))
    await second.scheduler.schedule("*/5 * * * *", "fragile", collect)
    [task] = second.scheduler.get_tasks()
    assert (task["run_count"], task["failure_count"]) == (2, 2)
    assert task["last_error"] == "RuntimeError: upstream down"
    await second.scheduler.advance(timedelta(minutes=3))
    [task] = second.scheduler.get_tasks()
    assert (task["run_count"], task["failure_count"], task["last_error"]) == (3, 2, None)
    await second.shut_down()


async def test_cancel_removes_the_stored_state(processes: Callable[[datetime], Process]) -> None:
    first = processes(START)
    await first.scheduler.schedule("*/5 * * * *", "collect", collect)
    once = await first.scheduler.run_in(60, remember, "x")
    await first.scheduler.run_in(90, remember, "y", task_name="y")
    assert len(await first.state.list_keys("scheduler:*")) == 3
    assert await first.scheduler.cancel(once) is True
    assert await first.scheduler.cancel("collect") is True
    assert len(await first.state.list_keys("scheduler:*")) == 1
    assert await first.scheduler.cancel_all() == 1
    assert await first.state.list_keys("scheduler:*") == []
    await first.shut_down()

    second = processes(at(60))
    await second.scheduler.start()
    await second.scheduler.schedule("*/5 * * * *", "collect", collect)
    [task] = second.scheduler.get_tasks()
    assert task["run_count"] == 0
    assert task["next_run"] == at(65).isoformat()
    await second.shut_down()


async def test_cancel_all_also_forgets_history_of_jobs_not_declared_again(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.schedule("*/5 * * * *", "old-job", collect)
    await first.shut_down()

    second = processes(at(1))
    await second.scheduler.start()
    assert await second.scheduler.cancel("old-job") is True
    assert await second.state.list_keys("scheduler:*") == []
    await second.shut_down()


async def test_a_handler_without_an_importable_name_keeps_the_task_in_memory(
    processes: Callable[[datetime], Process], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_center_sdk.scheduler")
    first = processes(START)

    async def nested() -> None:
        CALLS.append(("nested", None))

    await first.scheduler.run_in(60, nested)
    await first.scheduler.run_in(60, remember, object())  # arguments that are not JSON
    assert [task["persistent"] for task in first.scheduler.get_tasks()] == [False, False]
    assert await first.state.list_keys("scheduler:*") == []
    messages = [record.getMessage() for record in caplog.records]
    assert any("in memory only" in m and "importable" in m for m in messages)
    assert any("in memory only" in m and "not JSON" in m for m in messages)
    await first.scheduler.advance(timedelta(minutes=1))
    assert CALLS[0] == ("nested", None)
    await first.shut_down()


async def test_a_registered_handler_is_found_again_by_its_name(
    processes: Callable[[datetime], Process],
) -> None:
    def make_handler(tag: str) -> Callable[..., Any]:
        async def notify(channel: str) -> None:
            CALLS.append((tag, channel))

        return notify

    first = processes(START)
    first.scheduler.register_handler("notify", make_handler("first"))
    handler = first.scheduler._handlers["notify"]
    await first.scheduler.run_in(60, handler, "ops", task_name="ping")
    assert first.scheduler.get_tasks()[0]["persistent"] is True
    await first.shut_down()

    second = processes(at(120))
    await second.scheduler.start()
    assert [task["name"] for task in second.scheduler.get_tasks()] == ["ping"]
    assert await second.scheduler.run_due() == 0  # no handler known yet: it waits
    second.scheduler.register_handler("notify", make_handler("second"))
    assert await second.scheduler.run_due() == 1
    assert CALLS == [("second", "ops")]
    await second.shut_down()


async def test_an_unreadable_record_is_skipped_and_left_in_place(
    processes: Callable[[datetime], Process], caplog: pytest.LogCaptureFixture
) -> None:
    first = processes(START)
    await first.state.set("scheduler:task:broken", {"kind": "weekly-ish"})
    await first.scheduler.run_in(60, remember, "fine")
    await first.shut_down()

    caplog.clear()
    caplog.set_level(logging.WARNING, logger="ops_center_sdk.scheduler")
    second = processes(at(60))
    await second.scheduler.start()
    assert len(second.scheduler.get_tasks()) == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'scheduler:task:broken'" in warning.getMessage()
    assert "kind" in warning.getMessage()
    assert await second.state.get("scheduler:task:broken") == {"kind": "weekly-ish"}
    await second.shut_down()


async def test_a_storage_failure_while_scheduling_adds_nothing(
    processes: Callable[[datetime], Process],
) -> None:
    first = processes(START)
    await first.scheduler.schedule("*/5 * * * *", "kept", collect)
    await first.backend.close()
    with pytest.raises(StorageError):
        await first.scheduler.schedule("*/5 * * * *", "new-job", collect)
    with pytest.raises(StorageError):
        await first.scheduler.run_in(60, remember, "x")
    with pytest.raises(StorageError):
        await first.scheduler.schedule("0 * * * *", "kept", explode)
    [task] = first.scheduler.get_tasks()
    assert (task["name"], task["cron"], task["next_run"]) == (
        "kept",
        "*/5 * * * *",
        at(5).isoformat(),
    )


async def test_state_on_a_shared_memory_backend_works_the_same() -> None:
    backend = MemoryStorage()
    clock = ManualClock(START)
    first = Scheduler(owner="p", clock=clock, state=Storage(backend, NAMESPACE))
    task_id = await first.run_in(60, remember, "from-memory")
    await first.stop()

    clock.advance(timedelta(minutes=5))
    second = Scheduler(owner="p", clock=clock, state=Storage(backend, NAMESPACE))
    await second.start()
    assert second.get_tasks()[0]["id"] == task_id
    assert await second.run_due() == 1
    assert CALLS == [("from-memory", 1)]
    assert await Storage(backend, NAMESPACE).list_keys() == []
    assert await Storage(backend, "other-plugin").list_keys() == []
