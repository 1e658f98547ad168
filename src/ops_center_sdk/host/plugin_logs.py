"""Logs the plugin host keeps: each plugin's recent records, and hook failures.

:class:`RecentLogs` sits on a plugin's logger (``ops_center.plugins.<id>``)
and keeps its latest records in a bounded ring, for
``GET /api/v1/plugins/{id}/logs``: exactly what the plugin logged. The SDK's
own records about a plugin (a hook that raised or timed out) go to
``ops_center_sdk.hooks``; :class:`HookFailureWatch` reads those and tells the
host which plugin failed, for the health endpoint.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

DEFAULT_CAPACITY = 1000
HOOKS_LOGGER = "ops_center_sdk.hooks"


def level_number(level: str | int) -> int:
    """``"warning"`` or ``30`` -> 30; ``ValueError`` naming the levels otherwise."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return number


class RecentLogs(logging.Handler):
    """The latest ``capacity`` records of one logger, oldest first.

    >>> logs = RecentLogs(capacity=100)
    >>> logs.attach(logging.getLogger("ops_center.plugins.my-plugin"))
    >>> logs.records(limit=10, level="WARNING")
    []
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__(level=logging.DEBUG)
        self._ring: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._loggers: list[logging.Logger] = []

    def attach(self, logger: logging.Logger) -> None:
        """Start keeping ``logger``'s records (it lets INFO through if nothing is set)."""
        if logger in self._loggers:
            return
        if logger.level == logging.NOTSET and logger.getEffectiveLevel() > logging.INFO:
            # Without this, INFO records would be dropped before reaching the ring
            # whenever nobody configured logging (the root logger says WARNING).
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        self._loggers.append(logger)

    def detach(self) -> None:
        """Stop keeping records (the ones kept stay readable)."""
        for logger in self._loggers:
            logger.removeHandler(self)
        self._loggers.clear()

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "levelno": record.levelno,
            "message": record.getMessage(),
            "logger": record.name,
            "event": getattr(record, "event", None),
            "task": getattr(record, "task", None),
        }
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["exception"] = f"{type(exc).__name__}: {exc}"
        self._ring.append(entry)

    def records(self, *, limit: int = 100, level: str | int | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` records at ``level`` or above, oldest first."""
        floor = level_number(level) if level is not None else logging.NOTSET
        kept = [entry for entry in list(self._ring) if entry["levelno"] >= floor]
        return [
            {key: value for key, value in entry.items() if key != "levelno"}
            for entry in kept[-limit:]
        ]


FailureCallback = Callable[[str, dict[str, Any]], None]


class HookFailureWatch(logging.Handler):
    """Calls ``on_failure(plugin_id, error)`` for each hook failure the SDK logs.

    The dispatcher logs a failing handler (exception, timeout, a filter
    returning None) at ERROR on ``ops_center_sdk.hooks`` with the plugin id,
    the hook and the handler on the record.
    """

    def __init__(self, on_failure: FailureCallback) -> None:
        super().__init__(level=logging.ERROR)
        self._on_failure = on_failure
        self._logger = logging.getLogger(HOOKS_LOGGER)

    def start(self) -> None:
        if self not in self._logger.handlers:
            self._logger.addHandler(self)

    def stop(self) -> None:
        self._logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        plugin_id = getattr(record, "plugin_id", None)
        if not isinstance(plugin_id, str):
            return
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message}: {type(exc).__name__}: {exc}"
        self._on_failure(
            plugin_id,
            {
                "phase": "hook",
                "message": message,
                "hook": getattr(record, "hook", None),
                "handler": getattr(record, "handler", None),
                "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            },
        )
