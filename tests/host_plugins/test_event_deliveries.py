"""The host tracks where each emitted event's deliveries stand, plugin by plugin."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plugin_kit import RunningHost, write_plugin

BLOCKING = """
import asyncio

from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", name="{id}", version="1.0.0")
gate = asyncio.Event()


@plugin.hook("device.deleted")
async def on_deleted(device_id: str) -> None:
    if device_id == "boom":
        raise KeyError(device_id)
    await gate.wait()
"""
EVENT = {"device_id": "d1", "device_data": {"id": "d1"}}


async def deliveries(host: RunningHost, event_id: str) -> dict:  # type: ignore[type-arg]
    response = await host.http.get(f"/api/v1/events/{event_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_deliveries_go_from_pending_to_handled_failed_or_dropped(
    host: RunningHost, plugins_dir: Path
) -> None:
    for plugin_id in ("first", "second"):
        write_plugin(plugins_dir / plugin_id, plugin_id, BLOCKING.format(id=plugin_id))
        assert (await host.install(plugins_dir / plugin_id)).status_code == 201
    posted = await host.http.post(
        "/api/v1/events", json={"name": "device.deleted", "payload": EVENT}
    )
    assert posted.status_code == 202
    event_id = posted.json()["id"]
    state = await deliveries(host, event_id)
    assert (state["done"], state["ok"]) == (False, False)
    assert [(d["plugin_id"], d["status"]) for d in state["deliveries"]] == [
        ("first", "pending"),
        ("second", "pending"),
    ]

    host.module("first").gate.set()
    assert (await host.http.post("/api/v1/plugins/second/disable")).status_code == 200
    await host.settle()
    state = await deliveries(host, event_id)
    assert (state["done"], state["ok"]) == (True, False)
    first, second = state["deliveries"]
    assert (first["status"], first["handlers_run"], first["failures"]) == ("handled", 1, [])
    assert second["status"] == "dropped"
    assert second["error"] == "plugin 'second' was disabled before the event reached it"

    boom = {"device_id": "boom", "device_data": {}}
    posted = await host.http.post(
        "/api/v1/events", json={"name": "device.deleted", "payload": boom}
    )
    await host.settle()
    state = await deliveries(host, posted.json()["id"])
    assert [d["plugin_id"] for d in state["deliveries"]] == ["first"]  # second is disabled
    assert state["deliveries"][0]["status"] == "failed"
    assert state["deliveries"][0]["failures"][0]["error"] == "KeyError: 'boom'"
    assert "on_deleted" in state["deliveries"][0]["failures"][0]["handler"]


RECORDING = """
from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", name="{id}", version="1.0.0")
seen: list[str] = []


@plugin.hook("device.deleted")
async def on_deleted(device_id: str, device_data: dict) -> None:
    seen.append(device_id)
"""


async def test_a_dead_letter_left_from_process_mode_replays_into_an_in_process_plugin(
    host: RunningHost, plugins_dir: Path
) -> None:
    write_plugin(plugins_dir / "was-process", "was-process", RECORDING.format(id="was-process"))
    assert (await host.install(plugins_dir / "was-process")).status_code == 201
    envelope = {
        "id": "evt-1",
        "name": "device.deleted",
        "occurred_at": "2026-12-04T00:00:00+00:00",
        "payload": EVENT,
    }
    host.plugins.dead_letters.add("was-process", envelope, attempts=5, error="timed out")  # type: ignore[arg-type]
    replay = await host.http.post("/api/v1/plugins/was-process/dead-letters/evt-1/replay")
    assert replay.status_code == 202, replay.text
    for _ in range(100):
        if host.module("was-process").seen:
            break
        await asyncio.sleep(0.01)
    assert host.module("was-process").seen == ["d1"]
    for _ in range(100):
        listed = (await host.http.get("/api/v1/plugins/was-process/dead-letters")).json()
        if not listed["items"]:
            break
        await asyncio.sleep(0.01)
    assert listed["items"] == []
