"""What ``validate`` reports: findings (file, line, message, fix) and the report of a folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import Problem

Severity = Literal["error", "warning"]

MANIFEST_FILE = "plugin.yaml"
CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class Finding:
    """One thing ``validate`` found: where, what, and how to fix it."""

    severity: Severity
    code: str
    """A stable word for scripts: ``manifest``, ``missing-file``, ``hook-handler``..."""
    message: str
    file: str | None = None
    """The file, relative to the plugin folder (``plugin.yaml``, ``main.py``)."""
    line: int | None = None
    fix: str | None = None

    @property
    def location(self) -> str:
        """``main.py:12``, ``plugin.yaml`` or empty."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.severity}: {where}{self.message}{fix}"


@dataclass(frozen=True)
class ValidationReport:
    """Everything found in one plugin folder."""

    folder: Path
    findings: tuple[Finding, ...]
    plugin_id: str | None = None
    version: str | None = None
    #: The routes the host would serve without an API key, as ``GET /status``.
    public_routes: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``validate --json`` prints)."""
        return {
            "valid": self.valid,
            "path": str(self.folder),
            "plugin": {"id": self.plugin_id, "version": self.version} if self.plugin_id else None,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "public_routes": list(self.public_routes),
            "findings": [finding.to_dict() for finding in self.findings],
        }


@dataclass
class Findings:
    """The findings of one validation run, as the checks add them."""

    root: Path
    items: list[Finding] = field(default_factory=list)
    plugin_id: str | None = None
    version: str | None = None
    public_routes: list[str] = field(default_factory=list)

    def error(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.items.append(Finding("error", code, message, file, line, fix))

    def warning(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.items.append(Finding("warning", code, message, file, line, fix))

    def relative(self, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path

    def add_manifest_problem(self, problem: Problem) -> None:
        file = self.relative(problem.file) or MANIFEST_FILE
        field_name = f"{problem.path}: " if problem.path else ""
        self.error(
            "manifest",
            f"{field_name}{problem.message}",
            file=file,
            line=problem.line,
            fix=_manifest_fix(problem, file),
        )

    def report(self) -> ValidationReport:
        ordered = sorted(
            self.items,
            key=lambda f: (f.severity != "error", f.file or "", f.line or 0),
        )
        return ValidationReport(
            self.root, tuple(ordered), self.plugin_id, self.version, tuple(self.public_routes)
        )


def _manifest_fix(problem: Problem, file: str) -> str:
    where = f"line {problem.line} of {file}" if problem.line else file
    message = problem.message
    if "did you mean" in message:
        suggestion = message.split("did you mean", 1)[1].split("?", 1)[0].strip()
        return f"use {suggestion} on {where}"
    if message == "is required":
        return f"add `{problem.path}: ...` to {file}"
    if message.startswith("unknown field"):
        return f"remove or rename `{problem.path}` on {where}"
    if message.startswith("invalid YAML"):
        return f"fix the YAML syntax on {where}"
    if problem.path:
        return f"change `{problem.path}` on {where} as the message says"
    return f"correct {where}"
