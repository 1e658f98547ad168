"""A plugin's own threads: sync handlers and tasks run there, bounded, and never hold exit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

import pytest

from ops_center_sdk import Plugin
from ops_center_sdk.testing import create_test_plugin
from ops_center_sdk.workers import WORKERS_ENV, WorkerPool, WorkerPoolClosed, default_workers

request_id: ContextVar[str] = ContextVar("request_id", default="none")


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What the blocked calls wait for; opened at the end so their threads end."""
    event = threading.Event()
    yield event
    event.set()


async def until(check: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``check()`` is true; fail after 5 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_at_most_max_workers_calls_run_at_once_the_others_wait_in_line(
    gate: threading.Event,
) -> None:
    pool = WorkerPool("busy", max_workers=2)
    running: list[int] = []
    peak = 0
    lock = threading.Lock()

    def work(number: int) -> int:
        nonlocal peak
        with lock:
            running.append(number)
            peak = max(peak, len(running))
        gate.wait()
        with lock:
            running.remove(number)
        return number * 10

    calls = [asyncio.ensure_future(pool.run(work, n)) for n in range(5)]
    await until(lambda: len(running) == 2, "two calls to run")
    assert pool.threads == 2
    assert not any(call.done() for call in calls)
    gate.set()
    assert await asyncio.gather(*calls) == [0, 10, 20, 30, 40]
    assert peak == 2
    assert pool.threads == 2  # reused, not one per call
    pool.shutdown()


async def test_a_call_runs_with_the_callers_context_and_raises_its_error() -> None:
    pool = WorkerPool("context")
    request_id.set("req-7")
    assert await pool.run(request_id.get) == "req-7"
    assert (await pool.run(threading.current_thread)).daemon

    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await pool.run(fail)
    pool.shutdown()


async def test_a_call_whose_caller_stopped_waiting_never_runs(gate: threading.Event) -> None:
    pool = WorkerPool("impatient", max_workers=1)
    ran: list[str] = []
    first = asyncio.ensure_future(pool.run(gate.wait))
    await until(lambda: pool.threads == 1, "the worker")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.run(ran.append, "late"), timeout=0.05)
    gate.set()
    await first
    assert await pool.run(ran.append, "next") is None
    assert ran == ["next"]
    pool.shutdown()


async def test_shutdown_drops_waiting_calls_and_the_pool_starts_again_on_use(
    gate: threading.Event,
) -> None:
    pool = WorkerPool("stopping", max_workers=1)
    hung = asyncio.ensure_future(pool.run(gate.wait))
    await until(lambda: pool.threads == 1, "the worker")
    waiting = asyncio.ensure_future(pool.run(lambda: "never"))
    await asyncio.sleep(0)
    pool.shutdown()
    with pytest.raises(WorkerPoolClosed, match="plugin 'stopping' stopped"):
        await waiting
    assert not hung.done()  # a running call cannot be stopped; its thread is a daemon
    assert await pool.run(lambda: "again") == "again"
    assert pool.threads == 1
    pool.shutdown()
    await until(lambda: pool.threads == 0, "the idle worker to end")


def test_the_size_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert default_workers() == 4
    assert WorkerPool("p").max_workers == 4
    monkeypatch.setenv(WORKERS_ENV, "7")
    assert WorkerPool("p").max_workers == 7
    assert WorkerPool("p", max_workers=2).max_workers == 2
    for bad in ("0", "many", "-1"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=f"{WORKERS_ENV} must be a whole number"):
            WorkerPool("p")
    for bad_count in (0, True, 2.5):
        with pytest.raises(ValueError, match="plugin 'p': workers must be a whole number"):
            WorkerPool("p", max_workers=bad_count)  # type: ignore[arg-type]


async def test_sync_hooks_and_tasks_run_on_the_plugins_threads(
    tmp_path: Path, gate: threading.Event
) -> None:
    plugin = Plugin("threaded", root=tmp_path, workers=2, hook_timeout=0.05)
    seen: list[str] = []

    @plugin.hook("device.created")
    def on_created(device_id: str) -> None:
        seen.append(threading.current_thread().name)
        gate.wait()

    for number in range(5):
        report = await plugin.dispatch("device.created", device_id=f"d{number}", device_data={})
        assert [f.timed_out for f in report.failures] == [True]
    # Two threads are hung; the three calls after them timed out in line, never started.
    assert len(seen) == 2
    assert all(name.startswith("plugin-threaded-worker-") for name in seen)
    assert plugin.workers.threads == 2
    gate.set()
    await plugin.close()
    await until(lambda: plugin.workers.threads == 0, "the released threads to end at close")

    tested = create_test_plugin("scheduled")
    ran: list[str] = []
    await tested.scheduler.run_in(0, lambda: ran.append(threading.current_thread().name))
    await tested.scheduler.advance(0)
    assert tested.scheduler.workers is tested.workers
    (name,) = ran
    assert name.startswith("plugin-scheduled-worker-")
    await tested.stop()
    await until(lambda: tested.workers.threads == 0, "the plugin's threads to end at stop")
