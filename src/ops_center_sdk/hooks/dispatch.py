"""Calling the handlers of one event or filter: isolation, timeouts, filter values.

Why it looks the way it does
----------------------------
A dispatch must cost little more than awaiting the handlers directly, yet
each handler has its own timeout, and ``asyncio.timeout`` costs about 40
times a bare await of a trivial handler. Most handlers finish without ever
suspending (they update a dict, store a key in SQLite on the loop thread...),
and a timer can only fire while a handler is suspended. So a timer is armed
only for a handler that actually suspends.

To see whether a handler suspends, the handlers run inside a *runner*: a
long-lived generator that ``yield from``-s each handler's coroutine in turn
and yields the sentinel ``_DONE`` when the chain is through. The dispatcher
steps the runner once with ``send``:

* fast path - ``send`` returns ``_DONE``: every handler finished without
  suspending. No timer, no task, and no ``StopIteration`` either: stepping
  each handler's coroutine with ``coro.send(None)`` would raise one per
  handler, which costs more than the await itself, while ``yield from``
  collects a return value in C. The runner is kept for the next dispatch.
* slow path - ``send`` returns anything else: a handler suspended, and this
  is what it yielded (a future, or ``None`` for a bare ``sleep(0)``).
  ``_resume`` hands it to the task, then relays ``send`` and ``throw``
  between the task and the runner (``yield from`` semantics, so cancellation
  reaches the handler) inside ``asyncio.timeout`` for that handler, until the
  runner moves past it. The deadline counts from the handler's first
  suspension: before it, no timer could have fired anyway.

A timeout cancels the handler: the ``CancelledError`` thrown in ends its
coroutine and the runner with it, so the dispatcher records the failure and
goes on with the next handler in a fresh runner. Exceptions from a handler
are caught inside the runner, logged with their traceback, and the runner
goes on. Every coroutine created is run to its end (or closed, when the
dispatch itself is closed): no "coroutine was never awaited".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
import types
from collections.abc import Callable, Generator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final

from ..context import register_event_runner
from ..errors import HookError
from .handler import HandlerKind, RegisteredHandler
from .report import DispatchReport, HandlerFailure

log = logging.getLogger("ops_center_sdk.hooks")

_DONE: Final = object()


# A filter gets its own shallow copy of a dict or list value, so that one
# that changes the value in place and then fails leaves nothing behind, and
# the caller's object is never changed. Deeper levels are shared: a deep copy
# before each filter makes a chain of trivial filters some 20 times slower
# (benchmarks/bench_hooks.py prints it).
_SHALLOW_COPY: Final[Mapping[type, Callable[[Any], Any]]] = {
    dict: dict.copy,
    list: list.copy,
    set: set.copy,
    bytearray: bytearray.copy,
}


class _Runner:
    """A generator running a chain's handlers, and what it collected.

    ``index`` is the handler it is in (or stopped at), ``value`` the filter
    chain's value as it was before that handler.
    """

    __slots__ = ("failures", "gen", "index", "send", "value")

    def __init__(self, start: int) -> None:
        self.index = start - 1
        self.failures: list[HandlerFailure] | None = None
        self.value: Any = None
        self.gen: Generator[Any, Any, None]
        self.send: Callable[[Any], Any]


class HandlerChain:
    """The handlers of one event, filter or lifecycle phase, in call order.

    Built by the registry whenever a handler is added or removed; a dispatch
    already running keeps the chain it started with.
    """

    __slots__ = (
        "_spare",
        "extract",
        "handlers",
        "keywords",
        "kind",
        "name",
        "ok_report",
        "runs",
        "steps",
    )

    def __init__(
        self,
        name: str,
        kind: HandlerKind,
        handlers: Sequence[RegisteredHandler],
        keywords: tuple[str, ...] | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.handlers = tuple(sorted(handlers, key=lambda h: (-h.priority, h.sequence)))
        self.keywords = keywords
        self.extract = _extractor(keywords) if kind == "action" else None
        # What the runner loop needs of each handler, without attribute lookups.
        self.steps = tuple(
            (index, h.target if h.positional else h.bind, h.positional)
            for index, h in enumerate(self.handlers)
        )
        self.ok_report = DispatchReport(name, len(self.handlers))
        self.runs = 0
        # One idle runner kept for the next dispatch; concurrent dispatches
        # (one suspended in a handler) make their own.
        self._spare: _Runner | None = None
        for handler in self.handlers:
            handler._chain = self

    def retire(self) -> None:
        """Settle the handlers' call counts; the registry no longer uses this chain."""
        for handler in self.handlers:
            handler._calls += self.runs
            if handler._chain is self:
                handler._chain = None
        self._spare = None

    async def dispatch(self, payload: Mapping[str, Any]) -> DispatchReport:
        """Run the action (or lifecycle) handlers with ``payload``."""
        values: tuple[Any, ...] = ()
        if self.extract is not None:
            try:
                values = self.extract(payload)
            except KeyError:
                raise self._missing_keywords(payload) from None
        self.runs += 1
        runner = self._spare or self._new_runner(0)
        self._spare = None
        job = (payload, values)
        try:
            outcome = runner.send(job)
        except BaseException:
            self._uncount_after(runner.index)
            raise
        if outcome is not _DONE:
            runner = await self._finish(runner, outcome, job)
        self._spare = runner
        failures = runner.failures
        if failures is None:
            return self.ok_report
        runner.failures = None
        return DispatchReport(self.name, len(self.handlers), failures)

    async def apply(self, value: Any, with_report: bool = False) -> Any:
        """Run the filter handlers on ``value``: the final value (and the report)."""
        self.runs += 1
        runner = self._spare or self._new_runner(0)
        self._spare = None
        try:
            outcome = runner.send(value)
        except BaseException:
            self._uncount_after(runner.index)
            raise
        if outcome is not _DONE:
            runner = await self._finish(runner, outcome, None)
        self._spare = runner
        value = runner.value
        runner.value = None
        failures = runner.failures
        if failures is None:
            return (value, self.ok_report) if with_report else value
        runner.failures = None
        report = DispatchReport(self.name, len(self.handlers), failures)
        return (value, report) if with_report else value

    def _new_runner(self, start: int) -> _Runner:
        runner = _Runner(start)
        loop = _run_filters if self.kind == "filter" else _run_actions
        runner.gen = loop(self, runner, start)
        runner.send = runner.gen.send
        runner.send(None)  # to the first ``yield``: ready for a job
        return runner

    async def _finish(self, runner: _Runner, pending: Any, job: Any) -> _Runner:
        """The slow path: a handler suspended; go on under per-handler timeouts."""
        try:
            while pending is not _DONE:
                index = _suspended_at(runner)
                handler = self.handlers[index]
                scope = asyncio.timeout(handler.timeout)
                try:
                    async with scope:
                        pending = await _resume(runner, pending)
                except TimeoutError as exc:
                    if not scope.expired():
                        raise
                    timeout = exc
                else:
                    if scope.expired():  # it swallowed the cancellation and returned late
                        self._timed_out(runner, handler, None)
                    continue
                # Outside the except block, so that later handlers' errors do
                # not chain to this timeout.
                self._timed_out(runner, handler, timeout)
                # The cancelled handler ended its runner; the next handler
                # starts in a new one, with the value as it was before it.
                restart = self._new_runner(index + 1)
                restart.failures = runner.failures
                restart_job = runner.value if job is None else job
                runner = restart
                pending = runner.send(restart_job)
        except BaseException:
            self._uncount_after(runner.index)
            raise
        return runner

    def _uncount_after(self, index: int) -> None:
        """The dispatch stopped at ``index``: the handlers after it were not called."""
        for handler in self.handlers[index + 1 :]:
            handler._calls -= 1

    def fail(self, runner: _Runner, handler: RegisteredHandler, exc: Exception | None) -> None:
        """Record and log a handler that raised (or, ``exc=None``, a filter that returned None)."""
        handler.failures += 1
        kept = "; the value is kept as it was before it" if self.kind == "filter" else ""
        if exc is None:
            error = HookError(
                f"filter handler {handler.name!r} of plugin {handler.owner!r} returned None "
                f"on {self.name!r}; a filter must return the new value"
            )
            failure = HandlerFailure(handler.name, error, "")
            log.error("%s%s", error, kept, extra=_extra(handler, self.name))
        else:
            text = "".join(traceback.format_exception(exc))
            failure = HandlerFailure(handler.name, exc, text)
            log.error(
                "%s handler %r of plugin %r failed on %r%s",
                handler.kind,
                handler.name,
                handler.owner,
                self.name,
                kept,
                exc_info=exc,
                extra=_extra(handler, self.name),
            )
        _add_failure(runner, failure)

    def _timed_out(
        self, runner: _Runner, handler: RegisteredHandler, exc: TimeoutError | None
    ) -> None:
        handler.failures += 1
        handler.timeouts += 1
        message = (
            f"{handler.kind} handler {handler.name!r} of plugin {handler.owner!r} did not "
            f"finish {self.name!r} within {handler.timeout:g} s and was cancelled"
        )
        error = TimeoutError(message)
        if exc is not None:
            # The cause is the CancelledError raised where the handler was waiting.
            error.__cause__ = exc.__cause__
            text = "".join(traceback.format_exception(exc))
        else:
            text = ""
        kept = "; the value is kept as it was before it" if self.kind == "filter" else ""
        log.error("%s%s", message, kept, exc_info=exc, extra=_extra(handler, self.name))
        _add_failure(runner, HandlerFailure(handler.name, error, text, timed_out=True))

    def _missing_keywords(self, payload: Mapping[str, Any]) -> HookError:
        keywords = self.keywords or ()
        return missing_keywords_error(self.name, keywords, payload)


def missing_keywords_error(
    event: str, keywords: tuple[str, ...], payload: Mapping[str, Any]
) -> HookError:
    """The error for dispatching a catalog event without all of its keywords."""
    missing = [k for k in keywords if k not in payload]
    listed = ", ".join(repr(k) for k in missing)
    given = ", ".join(str(k) for k in payload) or "nothing"
    return HookError(
        f"dispatch of {event!r} is missing keyword{'s' if len(missing) > 1 else ''} {listed}: "
        f"the event carries {', '.join(keywords)} (got: {given})"
    )


def _extractor(keywords: tuple[str, ...] | None) -> Callable[[Mapping[str, Any]], Any] | None:
    """A C-speed function taking a catalog payload to its values, in catalog order."""
    if not keywords:
        return None
    if len(keywords) == 1:
        only = keywords[0]
        return lambda payload: (payload[only],)
    return itemgetter(*keywords)


def _extra(handler: RegisteredHandler, hook: str) -> dict[str, Any]:
    return {"plugin_id": handler.owner, "hook": hook, "handler": handler.name}


def _add_failure(runner: _Runner, failure: HandlerFailure) -> None:
    if runner.failures is None:
        runner.failures = [failure]
    else:
        runner.failures.append(failure)


# The runners below are generators flagged as coroutines (types.coroutine) so
# that they may ``yield from`` a handler's coroutine: that delegation runs in
# C and reports the handler's return without raising StopIteration.


@types.coroutine
def _run_actions(chain: HandlerChain, runner: _Runner, start: int) -> Generator[Any, Any, None]:
    steps = chain.steps
    outcome: Any = None
    while True:
        payload, values = yield outcome
        for index, call, positional in steps[start:] if start else steps:
            try:
                if positional:
                    yield from call(*values)
                else:
                    yield from call(payload)
            except Exception as exc:
                chain.fail(runner, chain.handlers[index], exc)
            except BaseException:
                runner.index = index  # where a cancellation or close stopped the chain
                raise
        start = 0
        outcome = _DONE


@types.coroutine
def _run_filters(chain: HandlerChain, runner: _Runner, start: int) -> Generator[Any, Any, None]:
    steps = chain.steps
    outcome: Any = None
    while True:
        value = yield outcome
        runner.value = value
        for index, call, _ in steps[start:] if start else steps:
            if type(value) is dict:
                argument = value.copy()
            else:
                copy = _SHALLOW_COPY.get(type(value))
                argument = value if copy is None else copy(value)
            try:
                result = yield from call(argument)
            except Exception as exc:
                chain.fail(runner, chain.handlers[index], exc)
                continue
            except BaseException:
                runner.index = index  # where a cancellation or close stopped the chain
                raise
            if result is None:
                chain.fail(runner, chain.handlers[index], None)
                continue
            runner.value = value = result
        start = 0
        outcome = _DONE


# Their frames mark "inside a handler of chain.name" for active_event().
register_event_runner(_run_actions.__code__)
register_event_runner(_run_filters.__code__)


@types.coroutine
def _resume(runner: _Runner, pending: Any) -> Generator[Any, Any, Any]:
    """Hand ``pending`` to the task, then relay between the task and the runner
    until it is done with the handler that yielded it.

    Returns ``_DONE``, or what a later handler yielded: that one gets its own timeout.
    """
    gen = runner.gen
    index = _suspended_at(runner)
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            gen.close()
            raise
        except BaseException as exc:
            pending = gen.throw(exc)
        else:
            pending = gen.send(sent)
        if pending is _DONE or _suspended_at(runner) != index:
            return pending


def _suspended_at(runner: _Runner) -> int:
    """The index of the handler the runner is suspended in.

    Read from the runner's frame, only on the slow path: keeping the index in
    an attribute would cost an assignment per handler on every dispatch.
    """
    index: int | None = inspect.getgeneratorlocals(runner.gen).get("index")
    if index is None:  # the runner ended (a cancellation or close went through it)
        return runner.index
    return index
