"""The threads a plugin's sync code runs on: a small pool of its own.

A ``def`` handler (hook, filter, lifecycle, scheduled task) must not run on
the event loop, but neither may it take the loop's default executor: that
one is shared with everything else in the process (the host unpacks
packages, checks manifests and writes config in it), so a dozen hung
handlers of one plugin would stop the host. Each :class:`~ops_center_sdk.Plugin`
has its own :class:`WorkerPool` instead, of ``OPS_CENTER_PLUGIN_WORKERS``
threads (4 by default). When they are all busy, further calls wait in line;
a caller that stops waiting (a hook's timeout) takes its call out of the line.

The threads are daemon threads, started when first needed. A thread running
code that never returns cannot be stopped, but it never holds the process
up either: :meth:`WorkerPool.shutdown` (at the plugin's stop) drops the
calls still waiting and leaves such a thread behind, and the interpreter
exits without joining it. (``concurrent.futures.ThreadPoolExecutor``, and so
``asyncio.to_thread``, joins its threads at exit: one hung call would keep a
stopped server alive until killed.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Final

from .errors import OpsCenterError

#: The environment variable giving the number of threads of each plugin's pool.
WORKERS_ENV: Final = "OPS_CENTER_PLUGIN_WORKERS"
DEFAULT_WORKERS: Final = 4


class WorkerPoolClosed(OpsCenterError):
    """A call was waiting for a thread of a plugin that stopped."""


def default_workers() -> int:
    """``OPS_CENTER_PLUGIN_WORKERS``, else 4; ``ValueError`` naming the variable if bad."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return DEFAULT_WORKERS
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of threads >= 1, got {raw!r}")
    return count


class _Call:
    """One call waiting for, or running on, a worker thread."""

    __slots__ = ("args", "context", "function", "future", "kwargs", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.loop = loop
        self.future = future
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()

    def run(self) -> None:
        if self.future.cancelled():  # its caller gave up while it waited in line
            return
        try:
            result = self.context.run(self.function, *self.args, **self.kwargs)
        except BaseException as exc:  # handed to the caller, as to_thread would
            self._settle(None, exc)
        else:
            self._settle(result, None)

    def drop(self, reason: str) -> None:
        self._settle(None, WorkerPoolClosed(reason))

    def _settle(self, result: Any, error: BaseException | None) -> None:
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_set_future, self.future, result, error)


def _set_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Crew:
    """The threads of one run of the pool (from first use to shutdown) and their line."""

    def __init__(self) -> None:
        self.line: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.idle = threading.Semaphore(0)


class WorkerPool:
    """At most ``max_workers`` daemon threads running one plugin's sync calls.

    >>> pool = WorkerPool("my-plugin", max_workers=4)
    >>> await pool.run(sum, [1, 2, 3])  # doctest: +SKIP
    6
    """

    _numbers = itertools.count(1)

    def __init__(self, owner: str, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = default_workers()
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"plugin {owner!r}: workers must be a whole number >= 1, got {max_workers!r}"
            )
        self.owner = owner
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._crew: _Crew | None = None

    @property
    def threads(self) -> int:
        """How many worker threads are alive (busy or idle)."""
        crew = self._crew
        return sum(thread.is_alive() for thread in crew.threads) if crew is not None else 0

    async def run(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` on one of the pool's threads, with this context.

        Waits in line while every thread is busy. Cancelling the wait takes
        the call out of the line (a call already running goes on to its end,
        its result dropped).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submit(_Call(loop, future, function, args, kwargs))
        return await future

    def shutdown(self) -> None:
        """Drop the calls waiting in line and let the idle threads end.

        Threads still running a call are left to finish it (or to hang) on
        their own; they never delay the interpreter's exit. The next
        :meth:`run` starts new threads.
        """
        with self._lock:
            crew, self._crew = self._crew, None
        if crew is None:
            return
        while True:
            try:
                waiting = crew.line.get_nowait()
            except queue.Empty:
                break
            if waiting is not None:
                waiting.drop(f"plugin {self.owner!r} stopped before this call could run")
        for _ in crew.threads:
            crew.line.put(None)

    def _submit(self, call: _Call) -> None:
        with self._lock:
            crew = self._crew
            if crew is None:
                crew = self._crew = _Crew()
            crew.line.put(call)
            if crew.idle.acquire(blocking=False):
                return
            if len(crew.threads) < self.max_workers:
                thread = threading.Thread(
                    target=_work,
                    args=(crew,),
                    name=f"plugin-{self.owner}-worker-{next(self._numbers)}",
                    daemon=True,
                )
                crew.threads.append(thread)
                thread.start()

    def __repr__(self) -> str:
        return f"<WorkerPool {self.owner!r} max_workers={self.max_workers}>"


def _work(crew: _Crew) -> None:
    while True:
        call = crew.line.get()
        if call is None:
            return
        call.run()
        del call  # not kept alive (with its arguments) while waiting for the next
        crew.idle.release()
