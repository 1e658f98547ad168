"""What the plugin host answers when a plugin cannot be found, installed, loaded or run.

Every error is a :class:`~ops_center_sdk.host.errors.HostError`, so a REST
call answers it in the one JSON shape, and the ``dev`` command prints its
message. Errors caused by the plugin's own files name the file and the line:
``plugin.yaml:4: permissions[0]: unknown permission 'users:reed'`` or
``main.py:12: importing the plugin failed: ValueError: ...``.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ManifestError, OpsCenterError, ProblemsError
from ..loader import PluginLoadError
from .errors import Conflict, HostError, NotFound


class PluginNotFound(NotFound):
    """No installed plugin has this id (404)."""

    def __init__(self, plugin_id: str) -> None:
        super().__init__(
            f"no plugin {plugin_id!r} is installed; GET /api/v1/plugins lists the installed ones"
        )


class PluginConflict(Conflict):
    """The request conflicts with the plugin's state (409), e.g. installing it twice."""


class PluginUnavailable(HostError):
    """The plugin is installed but not running: disabled, or failed (503)."""

    status, code = 503, "plugin_unavailable"


class PluginProblem(HostError):
    """The plugin's files or code are at fault (422); ``code`` says which part.

    ``invalid_manifest`` (plugin.yaml), ``invalid_config`` (config.yaml or the
    host's values against ``config_schema``), ``plugin_import_error`` (the
    entrypoint), ``plugin_failed`` (a lifecycle handler raised).
    """

    status = 422

    def __init__(
        self, code: str, message: str, *, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, details=details or [])
        self.code = code

    def __str__(self) -> str:
        return self.message


def load_problem(exc: OpsCenterError, folder: Path) -> PluginProblem:
    """The 422 error for a plugin folder that does not load, naming file and line."""
    if isinstance(exc, ManifestError):
        return _problems("invalid_manifest", exc, "manifest")
    if isinstance(exc, ConfigError):
        return _problems("invalid_config", exc, "config_schema")
    if isinstance(exc, PluginLoadError):
        file, line = error_location(exc.__cause__ or exc, folder)
        detail: dict[str, Any] = {"field": "entrypoint", "message": str(exc), "type": "import"}
        if file is not None:
            detail.update(file=file, line=line)
        return PluginProblem("plugin_import_error", str(exc), details=[detail])
    return PluginProblem("plugin_import_error", f"{folder}: {exc}")


def config_problem(exc: ConfigError, *, field_prefix: str = "") -> PluginProblem:
    """The 422 error for configuration values that break ``config_schema``.

    Each detail names the key path (``field``) and the message names the
    JSON Schema rule broken (``must be <= 10 (maximum), got 12``).
    """
    return _problems("invalid_config", exc, "config_schema", field_prefix=field_prefix)


def failure_problem(plugin_id: str, phase: str, exc: BaseException, folder: Path) -> PluginProblem:
    """The 422 error for a lifecycle handler (install, enable...) that raised."""
    file, line = error_location(exc, folder)
    where = f"{file}:{line}: " if file is not None else ""
    kind = type(exc).__name__
    message = f"plugin {plugin_id!r}: {phase} failed: {where}{kind}: {exc}"
    detail: dict[str, Any] = {"field": phase, "message": f"{kind}: {exc}", "type": "plugin_error"}
    if file is not None:
        detail.update(file=file, line=line)
    return PluginProblem("plugin_failed", message, details=[detail])


def error_location(exc: BaseException, folder: Path) -> tuple[str | None, int | None]:
    """The file and line inside ``folder`` where ``exc`` was raised (deepest frame)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    root = folder.resolve()
    inside = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if Path(frame.filename).resolve().is_relative_to(root)
    ]
    if not inside:
        return None, None
    return inside[-1].filename, inside[-1].lineno


def _problems(code: str, exc: ProblemsError, kind: str, *, field_prefix: str = "") -> PluginProblem:
    details: list[dict[str, Any]] = []
    for problem in exc.problems:
        detail: dict[str, Any] = {
            "field": f"{field_prefix}{problem.path}" if problem.path else field_prefix.rstrip("."),
            "message": problem.message,
            "type": kind,
        }
        if problem.file is not None:
            detail["file"] = problem.file
        if problem.line is not None:
            detail["line"] = problem.line
        details.append(detail)
    shown = "; ".join(str(problem) for problem in exc.problems[:3])
    more = f" (and {len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
    message = f"{exc.summary}: {shown}{more}" if shown else exc.summary
    return PluginProblem(code, message, details=details)
