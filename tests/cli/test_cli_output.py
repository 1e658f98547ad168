"""Colours only on a terminal, never with NO_COLOR; JSON output stays plain."""

from __future__ import annotations

import io
import json

import pytest

from ops_center_sdk.cli.output import Output, human_size, plural, wants_color
from ops_center_sdk.validation import Finding


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


FINDING = Finding("error", "manifest", "category: unknown", "plugin.yaml", 4, "use 'monitoring'")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


def test_colour_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    Output(out=terminal).findings([FINDING])
    Output(out=pipe).findings([FINDING])

    assert "\033[" in terminal.getvalue()
    assert "\033[" not in pipe.getvalue()
    assert pipe.getvalue() == (
        "error   plugin.yaml:4: category: unknown\n        fix: use 'monitoring'\n"
    )


def test_no_color_and_dumb_terminals_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color(Terminal())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_color(Terminal())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert wants_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert wants_color(io.StringIO())


def test_json_mode_prints_only_the_document() -> None:
    out = Terminal()
    output = Output(json_mode=True, out=out)
    output.line("for people")
    output.findings([FINDING])
    output.json({"valid": False})

    assert json.loads(out.getvalue()) == {"valid": False}


def test_sizes_and_plurals() -> None:
    assert human_size(512) == "512 bytes"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024 * 1024) == "5.0 MiB"
    assert (plural(1, "error"), plural(2, "error")) == ("1 error", "2 errors")
