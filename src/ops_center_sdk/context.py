"""What the running code is doing right now: the event or task being handled.

The plugin logger reads these so that a log line written inside a hook or a
task names it.

The scheduler sets :data:`current_task` around each run. Hook dispatch does
not set a context variable: a set and reset on every dispatch would cost more
than the handlers it calls (see ``hooks/dispatch.py``). Instead
:func:`active_event` finds the dispatcher's runner frame on the stack, a walk
paid only when somebody asks, which is when a record is logged. Code that
leaves the dispatcher's stack (a sync handler's worker thread) carries the
name in :data:`current_event`.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from types import CodeType

current_event: ContextVar[str | None] = ContextVar("ops_center_current_event", default=None)
current_task: ContextVar[str | None] = ContextVar("ops_center_current_task", default=None)

#: Code objects of the functions that run a chain of handlers; each has a
#: local ``chain`` whose ``name`` is the event, filter or lifecycle phase.
_RUNNER_CODES: set[CodeType] = set()


def register_event_runner(code: CodeType) -> None:
    """Declare ``code`` a handler runner (its frame has a ``chain`` local)."""
    _RUNNER_CODES.add(code)


def active_event() -> str | None:
    """The event (or filter, or lifecycle phase) whose handler is running here, if any.

    The innermost one when a handler emits another event.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _RUNNER_CODES:
            chain = frame.f_locals.get("chain")
            return getattr(chain, "name", None)
        frame = frame.f_back  # type: ignore[assignment]
    return current_event.get()
