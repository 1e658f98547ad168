"""The spec's "SDK Components" examples (Storage, Scheduler, Configuration, Logger) as written.

Each runs twice: on the testing kit's mocks, and on the real default services
(SQLite storage under OPS_CENTER_DATA_DIR, the system clock, config.yaml on disk).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ops_center_sdk import Plugin
from ops_center_sdk.testing import create_test_plugin

SCHEMA = {
    "type": "object",
    "properties": {
        "threshold": {"type": "number", "default": 0.8, "maximum": 1},
        "enabled": {"type": "boolean", "default": True},
    },
}


@pytest.fixture(params=["mocks", "real"])
async def plugin(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Plugin]:
    if request.param == "mocks":
        made = create_test_plugin("spec-plugin", config_schema=SCHEMA)
    else:
        monkeypatch.setenv("OPS_CENTER_DATA_DIR", str(tmp_path / "data"))
        made = Plugin(
            id="spec-plugin",
            name="Spec Plugin",
            version="1.0.0",
            description="The spec's examples",
            author="Your Name",
            category="monitoring",
            config_schema=SCHEMA,
            root=tmp_path,
        )
    yield made
    await made.close()


async def test_storage_example(plugin: Plugin, capsys: pytest.CaptureFixture[str]) -> None:
    await plugin.storage.set("device:1", {"name": "a"})
    # Store data
    await plugin.storage.set("key", {"data": "value"})
    await plugin.storage.set("counter", 42)

    # Retrieve data
    value = await plugin.storage.get("key")
    counter = await plugin.storage.get("counter", default=0)

    # Check existence
    if await plugin.storage.exists("key"):
        print("Key exists")

    # List keys with pattern
    keys = await plugin.storage.list_keys("device:*")

    # Delete
    await plugin.storage.delete("key")
    assert not await plugin.storage.exists("key")
    assert await plugin.storage.exists("counter")

    # Clear all
    await plugin.storage.clear()

    assert value == {"data": "value"}
    assert counter == 42
    assert capsys.readouterr().out == "Key exists\n"
    assert keys == ["device:1"]
    assert await plugin.storage.list_keys("*") == []
    assert await plugin.storage.get("missing", default=0) == 0


async def test_scheduler_example(plugin: Plugin) -> None:
    calls: list[str] = []

    async def my_handler(arg1: str = "none") -> None:
        calls.append(arg1)

    async def sync_handler() -> None:
        calls.append("sync")

    # Run once at specific time
    run_time = datetime.now() + timedelta(hours=1)
    task_id = await plugin.scheduler.run_at(run_time, my_handler, arg1="value")

    # Run once after delay
    await plugin.scheduler.run_in(timedelta(minutes=5), my_handler)

    # Run on schedule (cron)
    await plugin.scheduler.schedule(
        cron="0 */6 * * *",  # Every 6 hours
        task_name="sync_data",
        handler=sync_handler,
    )

    # List active tasks
    tasks = plugin.scheduler.get_tasks()
    assert sorted(t["kind"] for t in tasks) == ["cron", "once", "once"]
    assert {t["name"] for t in tasks} >= {"sync_data"}

    # Cancel task
    await plugin.scheduler.cancel(task_id)
    assert task_id not in {t["id"] for t in plugin.scheduler.get_tasks()}

    # Cancel all tasks
    await plugin.scheduler.cancel_all()
    assert plugin.scheduler.get_tasks() == []
    assert calls == []


async def test_scheduler_example_runs_when_the_mock_clock_moves() -> None:
    plugin = create_test_plugin("spec-plugin")
    calls: list[str] = []

    async def my_handler(arg1: str = "none") -> None:
        calls.append(arg1)

    async def sync_handler() -> None:
        calls.append("sync")

    run_time = datetime.now() + timedelta(hours=1)
    await plugin.scheduler.run_at(run_time, my_handler, arg1="value")
    await plugin.scheduler.run_in(timedelta(minutes=5), my_handler)
    await plugin.scheduler.schedule(cron="0 */6 * * *", task_name="sync_data", handler=sync_handler)

    await plugin.scheduler.advance(timedelta(minutes=5))
    assert calls.count("none") == 1
    assert "value" not in calls
    await plugin.scheduler.advance(timedelta(hours=1))
    assert calls.count("value") == 1
    # 13h05m of "0 */6 * * *" from wherever the wall clock stands: two or three runs
    await plugin.scheduler.advance(timedelta(hours=12))
    assert calls.count("sync") in (2, 3)
    assert calls.count("none") == 1


async def test_configuration_example(plugin: Plugin) -> None:
    # Get config value
    threshold = plugin.config.get("threshold", default=0.8)
    enabled = plugin.config.get("enabled")

    # Set config value
    plugin.config.set("threshold", 0.9)

    # Get all config
    all_config = plugin.config.all()

    # Save changes
    await plugin.config.save()

    # Reload from disk
    await plugin.config.reload()

    assert (threshold, enabled) == (0.8, True)
    assert all_config == {"threshold": 0.9, "enabled": True}
    assert plugin.config.get("threshold") == 0.9


async def test_logger_example(plugin: Plugin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_center.plugins.spec-plugin")
    plugin.logger.debug("Debug message")
    plugin.logger.info("Info message")
    plugin.logger.warning("Warning message")
    plugin.logger.error("Error message")
    plugin.logger.critical("Critical message")

    records = [r for r in caplog.records if r.name == "ops_center.plugins.spec-plugin"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("DEBUG", "Debug message"),
        ("INFO", "Info message"),
        ("WARNING", "Warning message"),
        ("ERROR", "Error message"),
        ("CRITICAL", "Critical message"),
    ]
    assert all(r.plugin_id == "spec-plugin" for r in records)  # type: ignore[attr-defined]
