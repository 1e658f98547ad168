"""Scheduler behaviour on a ManualClock: cron and one-shot runs, cancelling, failures, overlap."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops_center_sdk.context import current_task
from ops_center_sdk.errors import CronError, SchedulerError
from ops_center_sdk.scheduler import ManualClock, Scheduler, SystemClock

START = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


class Recorder:
    """Handlers that write down when they ran (by the scheduler's clock) and with what."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime, tuple[Any, ...], dict[str, Any]]] = []

    def handler(self, label: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((label, self.clock.now(), args, kwargs))

        return record

    def labels(self) -> list[tuple[str, datetime]]:
        return [(label, when) for label, when, _, _ in self.calls]


@pytest.fixture
def recorder(clock: ManualClock) -> Recorder:
    return Recorder(clock)


async def test_a_five_minute_cron_advanced_one_hour_runs_twelve_times_on_time(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    await scheduler.schedule(cron="*/5 * * * *", task_name="tick", handler=recorder.handler("t"))
    assert await scheduler.advance(timedelta(hours=1)) == 12
    assert recorder.labels() == [("t", at(5 * n)) for n in range(1, 13)]
    [task] = scheduler.get_tasks()
    assert task["run_count"] == 12
    assert task["last_run"] == at(60).isoformat()
    assert task["next_run"] == at(65).isoformat()


async def test_cron_and_one_shot_runs_interleave_by_time(
    scheduler: Scheduler, recorder: Recorder, clock: ManualClock
) -> None:
    await scheduler.schedule("*/10 * * * *", "ten", recorder.handler("ten"))
    await scheduler.schedule("*/15 * * * *", "fifteen", recorder.handler("fifteen"))
    await scheduler.run_in(timedelta(minutes=12), recorder.handler("once-12"))
    await scheduler.run_at(at(30), recorder.handler("once-30"))
    assert await scheduler.advance(timedelta(minutes=30)) == 7
    assert recorder.labels() == [
        ("ten", at(10)),
        ("once-12", at(12)),
        ("fifteen", at(15)),
        ("ten", at(20)),
        ("ten", at(30)),
        ("fifteen", at(30)),
        ("once-30", at(30)),
    ]
    assert clock.now() == at(30)
    assert [task["name"] for task in scheduler.get_tasks()] == ["ten", "fifteen"]


async def test_advance_stops_the_clock_at_the_target_even_with_nothing_due(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    assert await scheduler.advance(timedelta(minutes=42)) == 0
    assert clock.now() == at(42)
    assert await scheduler.advance(0) == 0
    assert clock.now() == at(42)


async def test_run_at_and_run_in_pass_args_and_kwargs(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    handler = recorder.handler("h")
    await scheduler.run_at(at(60), handler, "a", 2, arg1="value")
    await scheduler.run_in(timedelta(minutes=5), handler=handler, delay_label="later")
    await scheduler.run_in(90, handler)
    assert await scheduler.advance(timedelta(hours=2)) == 3
    assert recorder.calls == [
        ("h", START + timedelta(seconds=90), (), {}),
        ("h", at(5), (), {"delay_label": "later"}),
        ("h", at(60), ("a", 2), {"arg1": "value"}),
    ]
    assert scheduler.get_tasks() == []


async def test_run_at_reads_a_naive_datetime_as_local_time(scheduler: Scheduler) -> None:
    local_naive = (START + timedelta(hours=1)).astimezone().replace(tzinfo=None)
    await scheduler.run_at(local_naive, _noop)
    assert scheduler.get_tasks()[0]["next_run"] == at(60).isoformat()


async def test_a_one_shot_already_past_runs_at_the_next_run_due(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    await scheduler.run_at(START - timedelta(days=1), recorder.handler("late"))
    assert await scheduler.run_due() == 1
    assert recorder.labels() == [("late", START)]
    assert await scheduler.run_due() == 0


async def test_schedule_twice_keeps_one_task_with_the_same_id(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    first = await scheduler.schedule("*/5 * * * *", "sync_data", recorder.handler("old"))
    await scheduler.advance(timedelta(minutes=5))
    second = await scheduler.schedule("*/5 * * * *", "sync_data", recorder.handler("new"))
    assert first == second
    [task] = scheduler.get_tasks()
    assert task["id"] == first
    assert task["run_count"] == 1
    await scheduler.advance(timedelta(minutes=5))
    assert recorder.labels() == [("old", at(5)), ("new", at(10))]


async def test_schedule_again_with_a_new_cron_takes_the_new_times(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    await scheduler.schedule("*/5 * * * *", "job", recorder.handler("job"))
    await scheduler.schedule("0 * * * *", "job", recorder.handler("job"))
    assert len(scheduler.get_tasks()) == 1
    assert scheduler.get_tasks()[0]["cron"] == "0 * * * *"
    await scheduler.advance(timedelta(hours=2))
    assert recorder.labels() == [("job", at(60)), ("job", at(120))]


async def test_a_bad_redeclaration_leaves_the_task_as_it_was(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    task_id = await scheduler.schedule("*/5 * * * *", "job", recorder.handler("job"))
    with pytest.raises(CronError, match="hour field '25'"):
        await scheduler.schedule("0 25 * * *", "job", recorder.handler("other"))
    with pytest.raises(SchedulerError, match="unknown timezone 'Nowhere/Land'"):
        await scheduler.schedule("0 9 * * *", "job", _noop, timezone="Nowhere/Land")
    [task] = scheduler.get_tasks()
    assert task["id"] == task_id
    assert task["cron"] == "*/5 * * * *"
    await scheduler.advance(timedelta(minutes=5))
    assert recorder.labels() == [("job", at(5))]


async def test_a_bad_cron_adds_no_task(scheduler: Scheduler) -> None:
    with pytest.raises(CronError, match=r"day-of-week field '9'.*0-6"):
        await scheduler.schedule("0 9 * * 9", "job", _noop)
    assert scheduler.get_tasks() == []


async def test_a_named_one_shot_is_replaced_not_duplicated(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    first = await scheduler.run_in(60, recorder.handler("a"), task_name="reminder")
    second = await scheduler.run_in(120, recorder.handler("b"), task_name="reminder")
    assert first == second
    assert len(scheduler.get_tasks()) == 1
    await scheduler.advance(timedelta(minutes=5))
    assert recorder.labels() == [("b", at(2))]


async def test_unnamed_one_shots_are_separate_tasks_named_after_the_handler(
    scheduler: Scheduler,
) -> None:
    first = await scheduler.run_in(60, _noop)
    second = await scheduler.run_in(60, _noop)
    assert first != second
    assert [task["name"] for task in scheduler.get_tasks()] == ["_noop", "_noop"]


async def test_cancel_by_id_and_by_name(scheduler: Scheduler, recorder: Recorder) -> None:
    keep = await scheduler.schedule("*/5 * * * *", "keep", recorder.handler("keep"))
    drop = await scheduler.schedule("*/5 * * * *", "drop", recorder.handler("drop"))
    once = await scheduler.run_in(60, recorder.handler("once"), task_name="once")
    assert await scheduler.cancel(drop) is True
    assert await scheduler.cancel("once") is True
    assert [task["id"] for task in scheduler.get_tasks()] == [keep]
    assert once not in [task["id"] for task in scheduler.get_tasks()]
    await scheduler.advance(timedelta(minutes=5))
    assert recorder.labels() == [("keep", at(5))]


async def test_cancel_by_name_cancels_every_unnamed_task_of_that_handler(
    scheduler: Scheduler,
) -> None:
    await scheduler.run_in(60, _noop)
    await scheduler.run_in(120, _noop)
    assert await scheduler.cancel("_noop") is True
    assert scheduler.get_tasks() == []


async def test_cancel_of_an_unknown_task_returns_false(scheduler: Scheduler) -> None:
    await scheduler.schedule("*/5 * * * *", "job", _noop)
    assert await scheduler.cancel("no-such-task") is False
    assert len(scheduler.get_tasks()) == 1


async def test_cancel_all_removes_everything_and_counts(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    await scheduler.schedule("*/5 * * * *", "a", recorder.handler("a"))
    await scheduler.schedule("0 * * * *", "b", recorder.handler("b"))
    await scheduler.run_in(30, recorder.handler("c"))
    assert await scheduler.cancel_all() == 3
    assert scheduler.get_tasks() == []
    assert await scheduler.advance(timedelta(hours=2)) == 0
    assert recorder.calls == []
    assert await scheduler.cancel_all() == 0


async def test_get_tasks_lists_every_field(scheduler: Scheduler) -> None:
    cron_id = await scheduler.schedule("0 9 * * *", "daily", _noop, timezone="Europe/Paris")
    once_id = await scheduler.run_in(timedelta(minutes=1), _noop, task_name="soon")
    soon, daily = scheduler.get_tasks()
    assert soon == {
        "id": once_id,
        "name": "soon",
        "kind": "once",
        "cron": None,
        "timezone": None,
        "next_run": at(1).isoformat(),
        "last_run": None,
        "run_count": 0,
        "failure_count": 0,
        "skipped_count": 0,
        "running": False,
        "last_error": None,
        "persistent": False,
    }
    assert daily["id"] == cron_id
    assert daily["kind"] == "cron"
    assert daily["cron"] == "0 9 * * *"
    assert daily["timezone"] == "Europe/Paris"
    assert daily["next_run"] == "2024-01-01T08:00:00+00:00"


async def test_a_failing_run_is_logged_counted_and_the_schedule_goes_on(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = iter([ValueError("disk full"), None, RuntimeError("timeout")])

    async def flaky() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    caplog.set_level(logging.ERROR, logger="ops_center_sdk.scheduler")
    await scheduler.schedule("*/5 * * * *", "flaky", flaky)
    await scheduler.advance(timedelta(minutes=5))
    [task] = scheduler.get_tasks()
    assert task["failure_count"] == 1
    assert task["last_error"] == "ValueError: disk full"
    [record] = caplog.records
    assert record.name == "ops_center_sdk.scheduler"
    assert "'flaky'" in record.getMessage()
    assert "test-plugin" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError

    await scheduler.advance(timedelta(minutes=5))
    [task] = scheduler.get_tasks()
    assert (task["run_count"], task["failure_count"], task["last_error"]) == (2, 1, None)
    await scheduler.advance(timedelta(minutes=5))
    [task] = scheduler.get_tasks()
    assert (task["run_count"], task["failure_count"]) == (3, 2)
    assert task["last_error"] == "RuntimeError: timeout"
    assert task["next_run"] == at(20).isoformat()


async def test_a_failing_one_shot_is_logged_and_removed(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise KeyError("missing")

    caplog.set_level(logging.ERROR, logger="ops_center_sdk.scheduler")
    await scheduler.run_in(0, broken, task_name="broken")
    assert await scheduler.run_due() == 1
    assert scheduler.get_tasks() == []
    assert "'broken'" in caplog.records[0].getMessage()


async def test_a_cron_run_still_going_is_skipped_not_started_twice(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    started: list[datetime] = []
    running = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        started.append(clock.now())
        running.set()
        await release.wait()

    await scheduler.schedule("*/5 * * * *", "slow", slow)
    first = asyncio.create_task(scheduler.advance(timedelta(minutes=5)))
    await asyncio.wait_for(running.wait(), timeout=5)
    assert await scheduler.advance(timedelta(minutes=10)) == 0
    [task] = scheduler.get_tasks()
    assert task["running"] is True
    assert (task["run_count"], task["skipped_count"]) == (1, 2)
    assert task["next_run"] == at(20).isoformat()

    release.set()
    assert await asyncio.wait_for(first, timeout=5) == 1
    assert scheduler.get_tasks()[0]["running"] is False
    await scheduler.advance(timedelta(minutes=5))
    assert started == [at(5), at(20)]


async def test_overlap_with_the_clock_moved_by_hand_and_run_due(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    running = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow() -> None:
        nonlocal runs
        runs += 1
        running.set()
        await release.wait()

    await scheduler.schedule("* * * * *", "slow", slow)
    clock.advance(timedelta(minutes=1))
    first = asyncio.create_task(scheduler.run_due())
    await asyncio.wait_for(running.wait(), timeout=5)
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 0
    release.set()
    assert await asyncio.wait_for(first, timeout=5) == 1
    assert runs == 1
    assert scheduler.get_tasks()[0]["skipped_count"] == 1


async def test_handlers_see_their_task_name_in_the_context(scheduler: Scheduler) -> None:
    seen: list[tuple[str, str | None]] = []

    async def async_handler() -> None:
        seen.append(("async", current_task.get()))

    def sync_handler() -> None:
        seen.append(("sync", current_task.get()))

    await scheduler.schedule("*/5 * * * *", "async-job", async_handler)
    await scheduler.run_in(60, sync_handler, task_name="sync-job")
    await scheduler.advance(timedelta(minutes=5))
    assert seen == [("sync", "sync-job"), ("async", "async-job")]
    assert current_task.get() is None


async def test_sync_handlers_run_off_the_event_loop_thread(scheduler: Scheduler) -> None:
    threads: list[int] = []

    def blocking(value: int) -> None:
        threads.append(threading.get_ident())
        assert value == 7

    await scheduler.run_in(0, blocking, 7)
    assert await scheduler.run_due() == 1
    assert threads
    assert threads[0] != threading.get_ident()


async def test_a_callable_object_with_an_async_call_is_awaited(scheduler: Scheduler) -> None:
    class Job:
        calls = 0

        async def __call__(self) -> None:
            Job.calls += 1

    await scheduler.run_in(0, Job())
    await scheduler.run_due()
    assert Job.calls == 1


async def test_a_handler_that_cannot_take_the_arguments_is_refused_at_scheduling(
    scheduler: Scheduler,
) -> None:
    async def needs_device(device_id: str) -> None:
        return None

    with pytest.raises(TypeError, match=r"task 'needs_device'.*device_id"):
        await scheduler.schedule("* * * * *", "needs_device", needs_device)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        await scheduler.run_in(1, needs_device, "d1", colour="red")
    with pytest.raises(TypeError, match="must be callable"):
        await scheduler.run_in(1, "not a function")  # type: ignore[arg-type]
    assert scheduler.get_tasks() == []


async def test_bad_names_and_delays_are_refused(scheduler: Scheduler) -> None:
    with pytest.raises(ValueError, match="task_name must not be empty"):
        await scheduler.schedule("* * * * *", "  ", _noop)
    with pytest.raises(TypeError, match="task_name must be a string"):
        await scheduler.schedule("* * * * *", 5, _noop)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero or more seconds, got -1"):
        await scheduler.run_in(-1, _noop)
    with pytest.raises(ValueError, match="zero or more"):
        await scheduler.run_in(float("nan"), _noop)
    with pytest.raises(TypeError, match="timedelta or seconds"):
        await scheduler.run_in("5 minutes", _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="datetime"):
        await scheduler.run_at("2024-01-01T10:00", _noop)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"run_in delay 1e\+300 is too long"):
        await scheduler.run_in(1e300, _noop)
    with pytest.raises(ValueError, match="after the year 9999"):
        await scheduler.run_in(timedelta(days=999_999_999), _noop)
    assert scheduler.get_tasks() == []


async def test_cron_uses_the_scheduler_timezone_or_the_one_given(clock: ManualClock) -> None:
    clock.set(datetime(2024, 1, 15, tzinfo=UTC))
    paris = Scheduler(clock=clock, timezone="Europe/Paris")
    ran: list[tuple[str, datetime]] = []

    async def note(label: str) -> None:
        ran.append((label, clock.now()))

    await paris.schedule("0 9 * * *", "paris", note, args=("paris",))
    await paris.schedule("0 9 * * *", "utc", note, timezone="UTC", kwargs={"label": "utc"})
    await paris.schedule("0 9 * * *", "tokyo", note, timezone="Asia/Tokyo", args=("tokyo",))
    await paris.advance(timedelta(days=1))
    assert ran == [
        ("paris", datetime(2024, 1, 15, 8, 0, tzinfo=UTC)),
        ("utc", datetime(2024, 1, 15, 9, 0, tzinfo=UTC)),
        ("tokyo", datetime(2024, 1, 16, 0, 0, tzinfo=UTC)),  # 09:00 in Tokyo
    ]


async def test_a_scheduler_on_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(SchedulerError, match="unknown timezone 'Atlantis/Capital'"):
        Scheduler(timezone="Atlantis/Capital")


async def test_advance_needs_a_manual_clock_and_a_forward_delta(scheduler: Scheduler) -> None:
    with pytest.raises(SchedulerError, match=r"ManualClock.*SystemClock"):
        await Scheduler(clock=SystemClock()).advance(timedelta(minutes=1))
    with pytest.raises(ValueError, match="zero or more"):
        await scheduler.advance(timedelta(minutes=-1))


async def test_tasks_added_by_a_handler_run_within_the_same_advance(
    scheduler: Scheduler, recorder: Recorder
) -> None:
    async def chain() -> None:
        await scheduler.run_in(timedelta(minutes=10), recorder.handler("follow-up"))

    await scheduler.run_in(timedelta(minutes=5), chain)
    assert await scheduler.advance(timedelta(minutes=30)) == 2
    assert recorder.labels() == [("follow-up", at(15))]


async def test_start_with_a_manual_clock_runs_nothing_by_itself(
    scheduler: Scheduler, recorder: Recorder, clock: ManualClock
) -> None:
    await scheduler.start()
    await scheduler.run_in(0, recorder.handler("now"))
    clock.advance(timedelta(minutes=1))
    await asyncio.sleep(0)
    assert recorder.calls == []
    assert await scheduler.run_due() == 1
    await scheduler.stop()


async def _noop() -> None:
    return None
