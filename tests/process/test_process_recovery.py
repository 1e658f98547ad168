"""A plugin process that dies or hangs is restarted; its events are neither lost nor run twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from process_kit import ServedHost, eventually, served_host, write_plugin

from ops_center_sdk.storage import Storage, open_storage

pytestmark = pytest.mark.slow

#: Counts each event it handles; the first time it sees event 5 it stalls
#: (before counting), so that the test can kill it in the middle of an event.
COUNTER = """
import asyncio

from ops_center_sdk import Plugin

plugin = Plugin(id="counter", version="1.0.0")
STALL = 5


@plugin.hook("counter.tick")
async def tick(n):
    if n == STALL and not await plugin.storage.get("stalled"):
        await plugin.storage.set("stalled", True)
        await asyncio.sleep(3600)
    await plugin.storage.increment(f"seen:{n}")


@plugin.route("/seen")
async def seen():
    keys = await plugin.storage.list_keys("seen:*")
    counts = await plugin.storage.get_many(keys)
    return {key.split(":", 1)[1]: count for key, count in counts.items()}
"""

#: Blocks its whole process the first time it handles an event: it stops answering.
HANGER = """
import time

from ops_center_sdk import Plugin

plugin = Plugin(id="hanger", version="1.0.0")


@plugin.hook("hanger.work")
async def work(n):
    if not await plugin.storage.get("hung"):
        await plugin.storage.set("hung", True)
        time.sleep(3600)
    await plugin.storage.increment(f"done:{n}")
"""


async def emit(host: ServedHost, name: str, **payload: int) -> None:
    response = await host.http.post("/api/v1/events", json={"name": name, "payload": payload})
    assert response.status_code == 202, response.text


def plugin_storage(data_dir: Path, plugin_id: str) -> Storage:
    path = data_dir / "plugins" / plugin_id / "storage.db"
    return open_storage(plugin_id, f"sqlite:///{path}")


async def test_sigkill_while_events_flow_loses_none_and_runs_none_twice(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = write_plugin(tmp_path / "counter", "counter", COUNTER)
    async with served_host(data_dir) as host:
        described = await host.install(folder, mode="process")
        first_pid = described["process"]["pid"]
        for n in range(10):
            await emit(host, "counter.tick", n=n)
        # 0-4 handled, 5 being handled (stalled), 6-9 waiting in the host's queue
        await eventually(lambda: host.runtime("counter").stats["delivered"] == 5, "events 0-4")
        storage = plugin_storage(data_dir, "counter")
        try:
            await eventually(lambda: storage.get("stalled"), "event 5 under way")
        finally:
            await storage.close()

        os.kill(first_pid, signal.SIGKILL)
        for n in range(10, 20):  # while it is down and coming back
            await emit(host, "counter.tick", n=n)
        await host.settle()

        seen = await host.get("/plugins/counter/seen")
        assert seen == {str(n): 1 for n in range(20)}
        plugin = await host.get("/api/v1/plugins/counter")
        assert (plugin["state"], plugin["healthy"], plugin["restarts"]) == ("running", True, 1)
        assert plugin["process"]["pid"] not in (None, first_pid)
        assert plugin["process"]["dead_letters"] == 0
        assert "exited with status -9" in plugin["error"]["message"]
        dead = await host.get("/api/v1/plugins/counter/dead-letters")
        assert dead["total"] == 0


async def test_a_hung_plugin_fails_its_health_checks_and_is_restarted(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = write_plugin(tmp_path / "hanger", "hanger", HANGER)
    async with served_host(data_dir) as host:
        described = await host.install(folder, mode="process")
        first_pid = described["process"]["pid"]
        await emit(host, "hanger.work", n=1)
        storage = plugin_storage(data_dir, "hanger")
        try:
            await eventually(lambda: storage.get("hung"), "the plugin to hang")
            runtime = host.runtime("hanger")
            assert await runtime.check_health() is False
            unhealthy = await host.get("/api/v1/plugins/hanger")
            assert (unhealthy["state"], unhealthy["healthy"]) == ("unhealthy", False)
            assert "did not answer within 0.5 s" in unhealthy["error"]["message"]
            # the host's API keeps answering meanwhile; a second failure restarts it
            assert await runtime.check_health() is False
            await host.settle()
            assert await storage.get("done:1") == 1
        finally:
            await storage.close()
        health = await host.get("/api/v1/plugins/hanger/health")
        assert (health["state"], health["restarts"]) == ("running", 1)
        assert health["process"]["pid"] not in (None, first_pid)
        assert health["process"]["dead_letters"] == 0
