"""The plugin logger: name, context (event, task), text and JSON formats."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops_center_sdk import Plugin
from ops_center_sdk.logger import JsonFormatter, get_plugin_logger, make_formatter
from ops_center_sdk.scheduler import ManualClock
from ops_center_sdk.testing import create_test_plugin, trigger_hook


def attach(logger: logging.Logger, formatter: logging.Formatter) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return stream


def test_logger_is_the_standard_named_logger() -> None:
    logger = get_plugin_logger("named-plugin")
    assert logger is logging.getLogger("ops_center.plugins.named-plugin")


def test_json_format_is_one_object_per_line_with_plugin_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPS_CENTER_LOG_FORMAT", "json")
    logger = get_plugin_logger("json-plugin")
    stream = attach(logger, make_formatter())
    logger.info("hello %s", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert first["message"] == "hello world"
    assert first["plugin_id"] == "json-plugin"
    assert first["level"] == "INFO"
    assert "ValueError: boom" in second["exception"]
    assert len(lines) == 2


def test_text_format_names_plugin_and_event() -> None:
    formatter = make_formatter("text")
    assert not isinstance(formatter, JsonFormatter)


async def test_records_inside_a_hook_name_the_event() -> None:
    plugin = create_test_plugin("ctx-plugin")

    @plugin.hook("device.deleted")
    async def gone(device_id: str) -> None:
        plugin.logger.info(f"gone {device_id}")

    plugin.logger.info("outside")
    await trigger_hook(plugin, "device.deleted", device_id="d1")
    logs = plugin.logger.get_logs()  # type: ignore[attr-defined]
    assert [(entry["message"], entry["event"]) for entry in logs] == [
        ("outside", None),
        ("gone d1", "device.deleted"),
    ]
    assert all(entry["plugin_id"] == "ctx-plugin" for entry in logs)
    assert all(isinstance(entry["timestamp"], float) for entry in logs)


async def test_records_inside_a_task_name_the_task() -> None:
    plugin = create_test_plugin("task-plugin", clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))

    async def nightly() -> None:
        plugin.logger.warning("running")

    await plugin.scheduler.schedule(cron="0 0 * * *", task_name="nightly", handler=nightly)
    await plugin.scheduler.advance(timedelta(days=1))
    [entry] = plugin.logger.get_logs(level="WARNING")  # type: ignore[attr-defined]
    assert entry["task"] == "nightly"


async def test_sdk_records_never_enter_the_plugins_logger() -> None:
    plugin = create_test_plugin("quiet-plugin")

    @plugin.hook("device.deleted")
    async def broken(device_id: str) -> None:
        raise RuntimeError("bug")

    await trigger_hook(plugin, "device.deleted", raise_errors=False, device_id="d1")
    assert plugin.logger.get_logs() == []  # type: ignore[attr-defined]


def test_get_logs_with_an_unknown_level_is_an_error() -> None:
    plugin = create_test_plugin("lvl-plugin")
    with pytest.raises(ValueError, match="unknown log level"):
        plugin.logger.get_logs(level="LOUD")  # type: ignore[attr-defined]


def test_mock_logger_keeps_the_traceback_of_logged_exceptions() -> None:
    plugin = create_test_plugin("exc-plugin")
    try:
        raise KeyError("missing")
    except KeyError:
        plugin.logger.exception("lookup failed")
    [entry] = plugin.logger.get_logs(level="ERROR")  # type: ignore[attr-defined]
    assert "KeyError: 'missing'" in entry["exc_info"]


def test_constructor_metadata_that_plugin_yaml_overrides_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "plugin.yaml").write_text(
        "id: warn-plugin\nname: From File\nversion: 1.0.0\ncategory: security\n"
    )
    plugin = Plugin(id="warn-plugin", name="From Code", category="monitoring", root=tmp_path)
    assert plugin.metadata.name == "From File"
    warned = [r.getMessage() for r in caplog.records if r.name == "ops_center_sdk.plugin"]
    assert any("name='From Code'" in m for m in warned)
    assert any("category='monitoring'" in m for m in warned)
