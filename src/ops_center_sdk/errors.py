"""Errors the SDK raises.

Every error says what was wrong and where: a manifest error carries the field
path and the YAML line, a config error the key path and the JSON Schema rule,
a hook error the event and the handler.
"""

from __future__ import annotations

from dataclasses import dataclass


class OpsCenterError(Exception):
    """Base class of every error the SDK raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (``path``, ``line``) and what."""

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        location = f"{where}: " if where else ""
        field = f"{self.path}: " if self.path else ""
        return f"{location}{field}{self.message}"


class ProblemsError(OpsCenterError):
    """An error made of one or more :class:`Problem` entries."""

    def __init__(self, summary: str, problems: list[Problem]) -> None:
        self.summary = summary
        self.problems = list(problems)
        lines = [summary, *(f"  - {problem}" for problem in self.problems)]
        super().__init__("\n".join(lines))


class ManifestError(ProblemsError):
    """plugin.yaml is missing, is not YAML, or breaks the manifest's rules."""


class ConfigError(ProblemsError):
    """A configuration value breaks the plugin's ``config_schema``."""


class HookError(OpsCenterError):
    """A hook registration or a hook call that cannot work (unknown event, bad handler)."""


class UnknownEventError(HookError):
    """An event or filter name that is neither in the catalog nor the plugin's own namespace."""


class SchedulerError(OpsCenterError):
    """A schedule that cannot work (bad cron expression, unknown task)."""


class CronError(SchedulerError, ValueError):
    """A cron expression that does not parse; the message names the field."""


class StorageError(OpsCenterError):
    """The storage backend failed or its URL is not usable."""
