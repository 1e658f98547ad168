"""What the running code is doing right now: the event or task being handled.

The dispatcher and the scheduler set these; the plugin logger reads them so a
log line written inside a hook or a task names it.
"""

from __future__ import annotations

from contextvars import ContextVar

current_event: ContextVar[str | None] = ContextVar("ops_center_current_event", default=None)
current_task: ContextVar[str | None] = ContextVar("ops_center_current_task", default=None)
