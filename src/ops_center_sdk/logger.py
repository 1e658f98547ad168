"""The plugin logger: a standard :mod:`logging` logger per plugin.

``plugin.logger`` writes to the logger named ``ops_center.plugins.<id>``.
Every record carries the plugin id and, inside a hook or a scheduled task, the
event or task name (from :mod:`ops_center_sdk.context`). Output is human
readable by default and one JSON object per line when
``OPS_CENTER_LOG_FORMAT=json``; the level comes from ``OPS_CENTER_LOG_LEVEL``
(default ``INFO``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from .context import active_event, current_task

PLUGIN_LOGGER_PREFIX = "ops_center.plugins"
_HANDLER_MARK = "_ops_center_handler"


class PluginContextFilter(logging.Filter):
    """Stamps each record with the plugin id and the current event or task."""

    def __init__(self, plugin_id: str) -> None:
        super().__init__()
        self.plugin_id = plugin_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.plugin_id = self.plugin_id
        record.event = active_event()
        record.task = current_task.get()
        return True


class HumanFormatter(logging.Formatter):
    """``2026-11-25 10:00:00,123 INFO [my-plugin device.created] message``."""

    def format(self, record: logging.LogRecord) -> str:
        scope = [getattr(record, "plugin_id", None) or record.name]
        where = getattr(record, "event", None) or getattr(record, "task", None)
        if where:
            scope.append(where)
        record.scope = " ".join(scope)
        return super().format(record)

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(scope)s] %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("plugin_id", "event", "task"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def make_formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter ``OPS_CENTER_LOG_FORMAT`` (``text`` or ``json``) asks for."""
    choice = (fmt or os.environ.get("OPS_CENTER_LOG_FORMAT", "text")).lower()
    return JsonFormatter() if choice == "json" else HumanFormatter()


def get_plugin_logger(plugin_id: str) -> logging.Logger:
    """The logger of one plugin, with the context filter attached once."""
    logger = logging.getLogger(f"{PLUGIN_LOGGER_PREFIX}.{plugin_id}")
    if not any(isinstance(f, PluginContextFilter) for f in logger.filters):
        logger.addFilter(PluginContextFilter(plugin_id))
    level = os.environ.get("OPS_CENTER_LOG_LEVEL")
    if level:
        logger.setLevel(level.upper())
    return logger


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Send plugin and SDK records to stderr, once, if nobody configured logging.

    Runtimes (``create_app()``, the dev host) call this; a library import never
    does. An application that configured the root logger keeps its own setup.
    """
    chosen = (level or os.environ.get("OPS_CENTER_LOG_LEVEL") or "INFO").upper()
    for name in ("ops_center", "ops_center_sdk"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(chosen)
        if logging.getLogger().handlers or any(
            getattr(h, _HANDLER_MARK, False) for h in logger.handlers
        ):
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(make_formatter(fmt))
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
