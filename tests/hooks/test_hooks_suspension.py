"""Handlers that suspend: the slow path (relaying to the task) and per-handler timeouts.

The timeouts here are tiny (0.05 s) and the handlers wait on an event that is
never set: nothing waits for a schedule.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Generator
from typing import Any

import pytest

from ops_center_sdk.context import active_event
from ops_center_sdk.hooks import HookRegistry

pytestmark = pytest.mark.filterwarnings("error")

TINY = 0.05


async def test_a_timer_is_armed_only_for_a_handler_that_suspends(
    hooks: HookRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed: list[float | None] = []
    real_timeout = asyncio.timeout

    def counting_timeout(delay: float | None) -> asyncio.Timeout:
        armed.append(delay)
        return real_timeout(delay)

    monkeypatch.setattr(asyncio, "timeout", counting_timeout)

    async def never_suspends(device_id: str) -> None:
        pass

    async def suspends(device_id: str) -> None:
        await asyncio.sleep(0)

    for _ in range(3):
        hooks.add_action("device.deleted", never_suspends, timeout=1)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert armed == []
    hooks.add_action("device.deleted", suspends, timeout=2, priority=5)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert armed == [2.0]


async def test_handler_suspending_then_completing(hooks: HookRegistry) -> None:
    seen: list[Any] = []

    async def several_suspensions(device_id: str) -> None:
        for step in range(5):
            await asyncio.sleep(0)
            seen.append((device_id, step, active_event()))

    async def after(device_id: str) -> None:
        seen.append("after")

    hooks.add_action("device.deleted", several_suspensions)
    hooks.add_action("device.deleted", after)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert report.ok
    assert seen == [("d1", step, "device.deleted") for step in range(5)] + ["after"]
    assert active_event() is None


async def test_values_sent_into_a_suspended_handler_arrive(hooks: HookRegistry) -> None:
    loop = asyncio.get_running_loop()
    results: list[Any] = []

    async def waits_for_futures(device_id: str) -> None:
        first: asyncio.Future[int] = loop.create_future()
        loop.call_soon(first.set_result, 41)
        second: asyncio.Future[str] = loop.create_future()
        loop.call_soon(second.set_result, device_id.upper())
        results.append(await first + 1)
        results.append(await second)

    hooks.add_action("device.deleted", waits_for_futures)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert report.ok
    assert results == [42, "D1"]


async def test_exception_thrown_into_a_suspended_handler_reaches_it(
    hooks: HookRegistry,
) -> None:
    loop = asyncio.get_running_loop()
    handled: list[str] = []

    async def catches(device_id: str) -> None:
        future: asyncio.Future[None] = loop.create_future()
        loop.call_soon(future.set_exception, ConnectionError("link down"))
        try:
            await future
        except ConnectionError as exc:
            handled.append(str(exc))
        await asyncio.sleep(0)  # and it can go on suspending afterwards
        handled.append("went on")

    hooks.add_action("device.deleted", catches)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert report.ok
    assert handled == ["link down", "went on"]


async def test_handler_suspending_then_raising_is_isolated(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []

    async def fails_later(device_id: str) -> None:
        await asyncio.sleep(0)
        raise LookupError(f"no such device {device_id}")

    async def next_one(device_id: str) -> None:
        await asyncio.sleep(0)
        after.append(device_id)

    handler = hooks.add_action("device.deleted", fails_later)
    hooks.add_action("device.deleted", next_one)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert after == ["d1"]
    (failure,) = report.failures
    assert isinstance(failure.exception, LookupError)
    assert not failure.timed_out
    assert "raise LookupError" in failure.traceback
    assert (handler.calls, handler.failures, handler.timeouts) == (1, 1, 0)
    assert "no such device d1" in hook_log.text


async def test_a_handler_that_hangs_times_out_and_the_next_one_runs(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()
    events: list[str] = []

    async def hangs(device_id: str) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def next_one(device_id: str) -> None:
        events.append(f"next {active_event()}")

    hung = hooks.add_action("device.deleted", hangs, timeout=TINY)
    hooks.add_action("device.deleted", next_one)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})

    assert events == ["cancelled", "next device.deleted"]
    (failure,) = report.failures
    assert failure.timed_out
    assert failure.handler == hung.name
    assert isinstance(failure.exception, TimeoutError)
    assert str(failure.exception) == (
        f"action handler '{hung.name}' of plugin 'test-plugin' did not finish "
        "'device.deleted' within 0.05 s and was cancelled"
    )
    assert "await never.wait()" in failure.traceback  # where it was stuck
    assert (hung.calls, hung.failures, hung.timeouts) == (1, 1, 1)
    (record,) = hook_log.records
    assert record.levelno == logging.ERROR
    assert "did not finish 'device.deleted' within 0.05 s" in record.getMessage()
    assert "plugin 'test-plugin'" in record.getMessage()


async def test_each_handler_has_its_own_timeout(hooks: HookRegistry) -> None:
    never = asyncio.Event()
    done: list[str] = []

    async def quick_suspend(device_id: str) -> None:
        await asyncio.sleep(0)
        done.append("quick")

    async def hangs(device_id: str) -> None:
        await never.wait()

    async def patient(device_id: str) -> None:
        await asyncio.sleep(0)
        done.append("patient")

    hooks.add_action("device.deleted", quick_suspend, timeout=1.0)
    hung = hooks.add_action("device.deleted", hangs, timeout=TINY)
    hooks.add_action("device.deleted", patient)  # the registry default: 5 s
    hooks.add_action("device.deleted", hangs, timeout=TINY)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert done == ["quick", "patient"]
    assert [f.timed_out for f in report.failures] == [True, True]
    assert hung.timeouts == 1


async def test_a_timed_out_sync_handler_does_not_hold_up_the_rest(hooks: HookRegistry) -> None:
    release = threading.Event()
    after: list[str] = []

    def blocking(device_id: str) -> None:
        release.wait(10)  # in its worker thread, until the test lets it go

    async def next_one(device_id: str) -> None:
        after.append(device_id)

    hooks.add_action("device.deleted", blocking, timeout=TINY)
    hooks.add_action("device.deleted", next_one)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert after == ["d1"]
    assert report.failures[0].timed_out
    release.set()  # let the worker thread finish


async def test_a_handler_that_swallows_the_cancellation_counts_as_timed_out(
    hooks: HookRegistry,
) -> None:
    never = asyncio.Event()
    after: list[str] = []

    async def stubborn(device_id: str) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            return  # swallowed: bad manners, but the dispatch must go on

    async def next_one(device_id: str) -> None:
        after.append(device_id)

    handler = hooks.add_action("device.deleted", stubborn, timeout=TINY)
    hooks.add_action("device.deleted", next_one)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert after == ["d1"]
    assert report.failures[0].timed_out
    assert handler.timeouts == 1


async def test_cancelling_the_dispatch_cancels_the_handler(hooks: HookRegistry) -> None:
    never = asyncio.Event()
    started = asyncio.Event()
    events: list[str] = []

    async def waits(device_id: str) -> None:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            events.append(f"cancelled in {active_event()}")
            raise

    async def not_reached(device_id: str) -> None:
        events.append("not reached")

    first = hooks.add_action("device.deleted", waits)
    second = hooks.add_action("device.deleted", not_reached)

    async def caller() -> str | None:
        await hooks.dispatch("device.deleted", device_id="d1", device_data={})
        return "finished"

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["cancelled in device.deleted"]
    assert (first.calls, second.calls) == (1, 0)
    assert (first.failures, first.timeouts) == (0, 0)  # a cancellation is not its failure
    # The registry still works afterwards.
    never.set()
    assert (await hooks.dispatch("device.deleted", device_id="d2", device_data={})).ok
    assert events[-1] == "not reached"


class BareYield:
    """An awaitable that suspends with a bare ``yield`` (the task just reschedules it):
    a cancellation can only reach it by being thrown in."""

    def __init__(self, thrown: list[BaseException]) -> None:
        self.thrown = thrown

    def __await__(self) -> Generator[None, None, None]:
        try:
            yield
        except BaseException as exc:
            self.thrown.append(exc)
            raise


async def test_cancellation_is_thrown_into_the_suspended_handler(hooks: HookRegistry) -> None:
    thrown: list[BaseException] = []

    async def suspended(device_id: str) -> None:
        await BareYield(thrown)

    hooks.add_action("device.deleted", suspended)
    task = asyncio.create_task(hooks.dispatch("device.deleted", device_id="d1", device_data={}))
    await asyncio.sleep(0)  # the task runs up to the bare yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [type(exc) for exc in thrown] == [asyncio.CancelledError]


async def test_timeout_reaches_a_handler_that_keeps_yielding(hooks: HookRegistry) -> None:
    thrown: list[BaseException] = []

    async def spins(device_id: str) -> None:
        while True:
            await BareYield(thrown)

    hooks.add_action("device.deleted", spins, timeout=TINY)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert report.failures[0].timed_out
    assert [type(exc) for exc in thrown] == [asyncio.CancelledError]


async def test_closing_a_suspended_dispatch_closes_the_handler(hooks: HookRegistry) -> None:
    never = asyncio.Event()
    events: list[str] = []

    async def waits(device_id: str) -> None:
        try:
            await never.wait()
        finally:
            events.append("handler closed")

    hooks.add_action("device.deleted", waits)
    dispatch = hooks.dispatch("device.deleted", device_id="d1", device_data={})
    yielded = dispatch.send(None)  # runs up to the handler's wait
    assert isinstance(yielded, asyncio.Future)
    assert active_event() is None  # the caller, outside the handler, is in no event...
    dispatch.close()
    assert events == ["handler closed"]
    assert active_event() is None  # ...and reset when it is closed
    gc.collect()  # a "never awaited" coroutine would warn (an error in this module)


async def test_a_failing_dispatch_of_another_task_does_not_mix_reports(
    hooks: HookRegistry,
) -> None:
    gate = asyncio.Event()

    async def maybe_fail(device_id: str) -> None:
        if device_id == "bad":
            await gate.wait()
            raise ValueError("bad device")

    hooks.add_action("device.deleted", maybe_fail)
    slow_bad = asyncio.create_task(
        hooks.dispatch("device.deleted", device_id="bad", device_data={})
    )
    await asyncio.sleep(0)
    fine = await hooks.dispatch("device.deleted", device_id="good", device_data={})
    gate.set()
    bad = await slow_bad
    assert fine.ok
    assert [str(f.exception) for f in bad.failures] == ["bad device"]
