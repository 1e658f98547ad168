"""Events and filters across plugins: priority, isolation, permissions, POST /events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from plugin_kit import RunningHost, error_of, write_plugin, write_recorder

from ops_center_sdk.api import APIClient, PermissionDeniedError
from ops_center_sdk.host.plugin_host import key_owner

BROKEN = """
from ops_center_sdk import Plugin

plugin = Plugin(id="broken", version="1.0.0")


@plugin.filter_hook("device.data.process", priority=50)
async def wreck(data):
    raise KeyError("serial")


@plugin.hook("device.created")
async def explode(device_id):
    raise RuntimeError(f"cannot handle {device_id}")
"""

SLOW = """
import asyncio

from ops_center_sdk import Plugin

plugin = Plugin(id="slow", version="1.0.0")
started = asyncio.Event()
release = asyncio.Event()


@plugin.hook("device.created")
async def crawl(device_id):
    started.set()
    await release.wait()
"""

WAITER = """
import asyncio

from ops_center_sdk import Plugin

plugin = Plugin(id="waiter", version="1.0.0")
seen = []
arrived = asyncio.Event()


@plugin.hook("device.created")
async def note(device_id):
    seen.append(device_id)
    arrived.set()


@plugin.hook("waiter.ping")
async def ping(**payload):
    seen.append(("ping", payload))
    arrived.set()
"""


FORGETFUL = """
from ops_center_sdk import Plugin

plugin = Plugin(id="forgetful", version="1.0.0")
gone = []


@plugin.hook("device.deleted")
async def on_device_deleted(device_id: str, device_data: dict):
    gone.append((device_id, device_data))
"""


async def test_a_spec_deletion_handler_loads_and_gets_the_record_as_it_was(
    host: RunningHost, plugins_dir: Path
) -> None:
    installed = await host.install(write_plugin(plugins_dir / "forgetful", "forgetful", FORGETFUL))
    assert installed.status_code == 201, installed.text
    created = await host.http.post("/api/v1/devices", json={"id": "web-1", "name": "Web"})
    await host.http.post("/api/v1/devices/web-1/metrics", json={"cpu_usage": 12})
    before = (await host.http.get("/api/v1/devices/web-1")).json()
    assert (await host.http.delete("/api/v1/devices/web-1")).status_code == 204
    await host.settle()
    assert host.module("forgetful").gone == [("web-1", before)]
    assert before["name"] == created.json()["name"]
    assert before["last_metrics"] == {"cpu_usage": 12}


async def test_filters_of_all_plugins_run_by_priority_then_install_order(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_recorder(plugins_dir, "low-first", priority=5))
    await host.install(write_recorder(plugins_dir, "high", priority=20))
    await host.install(write_recorder(plugins_dir, "low-second", priority=5))
    created = await host.http.post("/api/v1/devices", json={"name": "Web"})
    assert created.json()["metadata"]["order"] == ["high", "low-first", "low-second"]
    await host.http.post("/api/v1/plugins/high/disable")
    created = await host.http.post("/api/v1/devices", json={"name": "Db"})
    assert created.json()["metadata"]["order"] == ["low-first", "low-second"]


async def test_a_failing_plugin_breaks_neither_the_others_nor_the_response(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_plugin(plugins_dir / "broken", "broken", BROKEN))
    await host.install(write_recorder(plugins_dir))
    created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
    assert created.status_code == 201
    assert created.json()["metadata"] == {"order": ["recorder"]}  # the failed filter kept nothing
    await host.settle()
    assert (await host.http.get("/plugins/recorder/status")).json()["devices"] == 1

    health = (await host.http.get("/api/v1/plugins/broken/health")).json()
    assert health["status"] == "enabled"
    assert health["hook_failures"] == 2
    failures = {h["handler"]: h["failures"] for h in health["hooks"] if h["failures"]}
    assert failures == {"wreck": 1, "explode": 1}
    assert "RuntimeError: cannot handle d1" in health["last_error"]["message"]
    assert health["last_error"]["handler"] == "explode"
    recorder_health = (await host.http.get("/api/v1/plugins/recorder/health")).json()
    assert (recorder_health["hook_failures"], recorder_health["last_error"]) == (0, None)


async def test_a_slow_plugin_delays_neither_the_others_nor_the_response(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_plugin(plugins_dir / "slow", "slow", SLOW))
    await host.install(write_plugin(plugins_dir / "waiter", "waiter", WAITER))
    slow, waiter = host.module("slow"), host.module("waiter")
    created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
    assert created.status_code == 201  # answered while the slow hook has not finished
    await asyncio.wait_for(slow.started.wait(), 5)
    await asyncio.wait_for(waiter.arrived.wait(), 5)
    assert waiter.seen == ["d1"]
    assert not slow.release.is_set()  # the slow hook is still waiting
    slow.release.set()
    await host.settle()


async def test_plugin_key_grants_exactly_the_manifest_permissions(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_recorder(plugins_dir))
    plugin = host.plugins.get("recorder").plugin
    assert plugin is not None
    assert host.app.state.keys.owners()[key_owner("recorder")] == {"devices:read", "alerts:write"}
    with pytest.raises(PermissionDeniedError) as denied:
        await plugin.api.users.list()
    assert denied.value.permission == "users:read"
    assert "users:read" in str(denied.value)
    assert (await plugin.api.devices.list()) == []

    # The host enforces it too, for a client that does not check before sending.
    unchecked = APIClient(
        "http://ops.test", plugin.api.api_key, transport=host.http._transport, max_retries=0
    )
    with pytest.raises(PermissionDeniedError) as refused:
        await unchecked.users.list()
    assert refused.value.status == 403
    assert refused.value.permission == "users:read"
    await unchecked.close()


async def test_emitting_events_through_the_api(host: RunningHost, plugins_dir: Path) -> None:
    await host.install(write_plugin(plugins_dir / "waiter", "waiter", WAITER))
    waiter = host.module("waiter")
    accepted = await host.http.post(
        "/api/v1/events",
        json={"name": "device.created", "payload": {"device_id": "x1", "device_data": {}}},
    )
    assert accepted.status_code == 202
    assert set(accepted.json()) == {"id", "name", "occurred_at"}
    custom = await host.http.post(
        "/api/v1/events", json={"name": "waiter.ping", "payload": {"n": 1}}
    )
    assert custom.status_code == 202
    await host.settle()
    assert waiter.seen == ["x1", ("ping", {"n": 1})]

    typo = await host.http.post("/api/v1/events", json={"name": "device.creatd", "payload": {}})
    assert typo.status_code == 422
    assert "did you mean 'device.created'" in error_of(typo)["message"]
    missing = await host.http.post(
        "/api/v1/events", json={"name": "device.deleted", "payload": {"device": "x1"}}
    )
    assert missing.status_code == 422
    fields = {d["field"] for d in error_of(missing)["details"]}
    assert fields == {"body.payload.device_id", "body.payload.device_data", "body.payload.device"}
    filter_name = await host.http.post(
        "/api/v1/events", json={"name": "device.data.process", "payload": {}}
    )
    assert "filter" in error_of(filter_name)["message"]
    other_namespace = await host.http.post(
        "/api/v1/events", json={"name": "someone-else.ping", "payload": {}}
    )
    assert other_namespace.status_code == 422

    plugin_key = host.app.state.keys.issue("ops-team", ["devices:write", "plugins:admin"])
    async with host.client(plugin_key) as client:
        not_admin = await client.post(
            "/api/v1/events", json={"name": "device.deleted", "payload": {"device_id": "x"}}
        )
    assert not_admin.status_code == 403
    assert "admin key" in error_of(not_admin)["message"]
