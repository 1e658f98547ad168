"""Mock services: the real storage, scheduler, config and logger on test backends."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ..config import Config
from ..errors import ConfigError, Problem
from ..logger import PLUGIN_LOGGER_PREFIX, PluginContextFilter
from ..scheduler import ManualClock, Scheduler
from ..storage import MemoryStorage, Storage


class MockStorage(Storage):
    """The storage API on an in-memory backend (expiry follows ``clock``)."""

    def __init__(self, namespace: str = "test-plugin", *, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        super().__init__(MemoryStorage(clock=self.clock.time), namespace)


class MockScheduler(Scheduler):
    """The scheduler on a :class:`ManualClock`: ``await advance(timedelta(hours=1))``.

    Nothing runs on its own; ``advance`` walks the clock forward through each
    due time in order and runs what is due there, cron schedules included.
    """

    def __init__(
        self,
        owner: str = "test-plugin",
        *,
        clock: ManualClock | None = None,
        state: Storage | None = None,
    ) -> None:
        self.clock = clock or ManualClock()
        super().__init__(owner=owner, clock=self.clock, state=state)

    async def advance(self, delta: timedelta | float) -> int:
        """Move the clock forward by ``delta`` and run every task due on the way."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        return await super().advance(delta)


class MockConfig(Config):
    """The real Config, with its schema enforced, on a config.yaml in a temporary folder.

    ``values`` play the part of config.yaml; ``save()`` writes the file
    atomically and ``reload()`` reads it back, as in production. The folder is
    removed when the object is garbage collected.
    """

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        schema: Mapping[str, Any] | None = None,
        label: str = "config (test values)",
    ) -> None:
        folder = tempfile.mkdtemp(prefix="ops-center-config-")
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "config.yaml"
        if values:
            path.write_text(yaml.safe_dump(_plain(values), sort_keys=False), encoding="utf-8")
        try:
            super().__init__(
                schema=dict(schema) if schema is not None else None,
                path=path,
                source_name="config",
                label=label,
            )
        except ConfigError as exc:
            # The values came from the test, not from a file: no file lines.
            problems = [Problem(p.path, p.message, file=label) for p in exc.problems]
            raise ConfigError(f"{label}: invalid configuration", problems) from None


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as a plain dict for YAML; a value YAML cannot hold is refused by name."""
    for key, value in values.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"config value for {key!r} is not a JSON value: {exc}") from None
    plain: dict[str, Any] = json.loads(json.dumps(dict(values)))
    return plain


class LogCapture(logging.Handler):
    """Keeps every record it is given, as dicts."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[dict[str, Any]] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            {
                "level": record.levelname,
                "message": record.getMessage(),
                "timestamp": record.created,
                "logger": record.name,
                "plugin_id": getattr(record, "plugin_id", None),
                "event": getattr(record, "event", None),
                "task": getattr(record, "task", None),
                "exc_info": self._formatter.formatException(record.exc_info)
                if record.exc_info
                else None,
            }
        )


class MockLogger(logging.Logger):
    """The plugin logger (``ops_center.plugins.<id>``) with a capturing handler.

    Records still propagate (pytest's ``caplog`` sees them); ``get_logs()``
    returns what this plugin logged, as dicts with ``level``, ``message``,
    ``timestamp``, ``event`` and ``task``.
    """

    def __init__(self, plugin_id: str = "test-plugin") -> None:
        super().__init__(f"{PLUGIN_LOGGER_PREFIX}.{plugin_id}", logging.DEBUG)
        self.parent = logging.getLogger(PLUGIN_LOGGER_PREFIX)
        self.addFilter(PluginContextFilter(plugin_id))
        self.capture = LogCapture()
        self.addHandler(self.capture)

    def get_logs(self, level: str | int | None = None) -> list[dict[str, Any]]:
        """The captured records, optionally only those of one level (``"ERROR"``)."""
        if level is None:
            return list(self.capture.records)
        number = level if isinstance(level, int) else logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(
                f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        # Through the number, so that aliases ("WARN", "FATAL") find their records.
        name = logging.getLevelName(number)
        return [r for r in self.capture.records if r["level"] == name]

    def clear(self) -> None:
        """Forget the captured records."""
        self.capture.records.clear()
