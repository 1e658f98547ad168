"""What the commands print: plain text for people (coloured on a terminal) or JSON.

Colour only when the stream is a terminal, ``NO_COLOR`` is unset or empty
(https://no-color.org) and ``TERM`` is not ``dumb``; ``FORCE_COLOR`` forces it.
JSON goes to stdout, one document per command, so ``--json | jq`` works.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..validation import Finding

_STYLES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "cyan": "36",
}


def wants_color(stream: TextIO) -> bool:
    """True when text written to ``stream`` may carry ANSI colours."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def is_interactive() -> bool:
    """True when a person can answer prompts: stdin and stdout are terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


class Output:
    """Prints a command's results and errors; ``json_mode`` switches to machine output."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._color_out = wants_color(self.out)
        self._color_err = wants_color(self.err)

    def style(self, text: str, *names: str, stream: TextIO | None = None) -> str:
        """``text`` in the named styles when the stream takes colour."""
        colored = self._color_err if stream is self.err else self._color_out
        if not colored or not names:
            return text
        codes = ";".join(_STYLES[name] for name in names)
        return f"\033[{codes}m{text}\033[0m"

    def line(self, text: str = "") -> None:
        """A line of human output (nothing in JSON mode)."""
        if not self.json_mode:
            print(text, file=self.out)

    def note(self, text: str) -> None:
        """Progress or context for people, on stderr (kept out of JSON and pipes)."""
        print(text, file=self.err)

    def error(self, message: str, *, hint: str | None = None) -> None:
        """An error, on stderr: ``error: message`` and an optional hint."""
        label = self.style("error:", "bold", "red", stream=self.err)
        print(f"{label} {message}", file=self.err)
        if hint:
            print(f"  {hint}", file=self.err)

    def success(self, text: str) -> None:
        """A final ``ok`` line for people."""
        self.line(f"{self.style('ok', 'bold', 'green')} {text}")

    def json(self, document: Any) -> None:
        """The command's JSON document (JSON mode only)."""
        if self.json_mode:
            print(json.dumps(document, indent=2, ensure_ascii=False), file=self.out)

    def findings(self, findings: Iterable[Finding]) -> None:
        """Validation findings, one block each: severity, location, message, fix."""
        for finding in findings:
            color = "red" if finding.severity == "error" else "yellow"
            label = self.style(f"{finding.severity:<7}", "bold", color)
            where = f"{self.style(finding.location, 'bold')}: " if finding.location else ""
            self.line(f"{label} {where}{finding.message}")
            if finding.fix:
                self.line(f"        {self.style('fix:', 'cyan')} {finding.fix}")


def plural(count: int, noun: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def human_size(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
