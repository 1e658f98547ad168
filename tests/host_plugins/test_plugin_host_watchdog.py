"""An in-process plugin cannot stall the host unnoticed, nor take the host's threads.

- an ``async`` handler blocking the event loop is named (plugin, handler, how
  long) in the host's log, the plugin's log and its health;
- sync handlers run on the plugin's own bounded threads: a dozen hung ones
  leave the host's default executor (marketplace uploads, checks) free.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_kit import RunningHost, write_plugin

from ops_center_sdk.packaging import build_package

BLOCKER = """
import time

from ops_center_sdk import Plugin

plugin = Plugin(id="blocker", version="1.0.0")


def pause():
    time.sleep(0.3)


@plugin.hook("device.created")
async def on_created(device_id):
    pause()  # a helper of the handler: the handler is what gets named
"""

CALM = """
from ops_center_sdk import Plugin

plugin = Plugin(id="calm", version="1.0.0")


@plugin.hook("device.created")
async def on_created(device_id):
    await plugin.storage.set(device_id, True)
"""

HANGER = """
import threading

from ops_center_sdk import Plugin

plugin = Plugin(id="hanger", version="1.0.0")
release = threading.Event()
started = []


@plugin.hook("device.created", timeout=0.05)
def on_created(device_id):
    started.append(threading.current_thread().name)
    release.wait()
"""

MARKET = "/api/v1/marketplace/plugins"


async def poll(check: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    """Await ``check()`` until it gives something true; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_async_handler_blocking_the_loop_is_named_in_logs_and_health(
    host: RunningHost, plugins_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ops_center_sdk.host.watchdog")
    for plugin_id, code in (("blocker", BLOCKER), ("calm", CALM)):
        response = await host.install(write_plugin(plugins_dir / plugin_id, plugin_id, code))
        assert response.status_code == 201, response.text
    health = (await host.http.get("/api/v1/plugins/blocker/health")).json()
    assert health["loop_blocked"] == {
        "count": 0,
        "last_ms": None,
        "last_handler": None,
        "last_at": None,
    }

    await host.http.post("/api/v1/devices", json={"id": "d1", "name": "d1"})
    await host.settle()

    async def blocked() -> dict[str, Any] | None:
        health = (await host.http.get("/api/v1/plugins/blocker/health")).json()
        report: dict[str, Any] = health["loop_blocked"]
        return report if report["count"] else None

    report = await poll(blocked, "the block in the blocker's health")
    assert report["count"] == 1
    assert report["last_handler"] == "on_created"
    assert 250 <= report["last_ms"] < 5000
    assert report["last_at"]
    calm = (await host.http.get("/api/v1/plugins/calm/health")).json()
    assert calm["loop_blocked"]["count"] == 0

    (warning,) = [r for r in caplog.records if r.name == "ops_center_sdk.host.watchdog"]
    message = warning.getMessage()
    assert warning.levelno == logging.WARNING
    assert message.startswith("plugin 'blocker': handler 'on_created' (main.py:")
    assert "blocked the event loop for " in message
    assert "(limit 100 ms)" in message
    logs = (await host.http.get("/api/v1/plugins/blocker/logs")).json()["items"]
    (record,) = logs
    assert (record["level"], record["logger"]) == ("WARNING", "ops_center_sdk.host.watchdog")
    assert record["message"] == message
    assert (await host.http.get("/api/v1/plugins/calm/logs")).json()["items"] == []


@pytest.fixture
def hanging_threads() -> Iterator[list[threading.Event]]:
    """Events set at the end of the test, so that the hung handlers' threads end."""
    releases: list[threading.Event] = []
    yield releases
    for release in releases:
        release.set()


async def test_hung_sync_hooks_take_only_their_plugins_threads(
    host: RunningHost,
    plugins_dir: Path,
    tmp_path: Path,
    hanging_threads: list[threading.Event],
) -> None:
    response = await host.install(write_plugin(plugins_dir / "hanger", "hanger", HANGER))
    assert response.status_code == 201, response.text
    module = host.module("hanger")
    hanging_threads.append(module.release)

    for number in range(12):
        device = {"id": f"d{number}", "name": "d"}
        assert (await host.http.post("/api/v1/devices", json=device)).status_code == 201
    await host.settle()  # each handler timed out; its thread hangs on

    # The host's own threads are free: an upload (unpacked and checked in a thread) answers.
    folder = write_plugin(
        tmp_path / "pkg" / "demo",
        "demo",
        CALM.replace("calm", "demo"),
        "description: A demo\nauthor: Tests\n",
        files={"README.md": "# Demo\n\nStores the devices it sees.\n"},
    )
    package = build_package(folder, tmp_path / "dist")
    upload = await asyncio.wait_for(
        host.http.post(
            MARKET,
            content=package.path.read_bytes(),
            headers={"Content-Type": "application/gzip", "X-Checksum-Sha256": package.sha256},
        ),
        timeout=10,
    )
    assert upload.status_code == 201, upload.text
    devices = await asyncio.wait_for(host.http.get("/api/v1/devices"), timeout=10)
    assert devices.status_code == 200
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), timeout=10) == "free"

    # The plugin's 4 threads are taken, the other calls timed out in line and never ran.
    assert len(module.started) == 4
    assert len(set(module.started)) == 4
    assert all(name.startswith("plugin-hanger-worker-") for name in module.started)
    health = (await host.http.get("/api/v1/plugins/hanger/health")).json()
    (hook,) = health["hooks"]
    assert (hook["calls"], hook["timeouts"]) == (12, 12)
