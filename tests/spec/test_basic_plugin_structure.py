"""The spec's "Basic Plugin Structure" example (spec_plugin/main.py, verbatim), end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ops_center_sdk.api import PermissionDeniedError
from ops_center_sdk.scheduler import ManualClock
from ops_center_sdk.testing import load_test_plugin, trigger_filter, trigger_hook

FOLDER = Path(__file__).parent / "spec_plugin"


async def test_the_spec_plugin_runs_its_hooks_routes_filter_and_schedule() -> None:
    clock = ManualClock(datetime(2026, 1, 5, 12, 1, tzinfo=UTC))
    plugin = load_test_plugin(FOLDER, clock=clock)
    await plugin.start()
    assert await plugin.storage.exists("installed_at")
    [task] = plugin.scheduler.get_tasks()
    assert (task["name"], task["cron"]) == ("check_devices", "*/5 * * * *")

    # the host knows the device, then tells the plugin it was created
    await plugin.api.devices.create({"id": "device-123", "name": "Web 1", "status": "online"})
    await trigger_hook(
        plugin, "device.created", device_id="device-123", device_data={"name": "Web 1"}
    )
    assert await plugin.storage.get("device:device-123") == {"name": "Web 1"}
    [alert] = await plugin.api.admin().alerts.list(severity="info")
    assert alert["title"] == "Device Registered"
    assert alert["message"] == "New device Web 1 added"

    enriched = await trigger_filter(plugin, "device.data.process", {"name": "x"})
    assert enriched["plugin_processed"] is True
    assert "processed_at" in enriched

    app = plugin.create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        status = await client.get("/plugins/my-plugin/status")
        missing = await client.get("/plugins/my-plugin/devices/nope/stats")
        found = await client.get("/plugins/my-plugin/devices/device-123/stats")
    assert status.json() == {"status": "running", "version": "1.0.0", "devices_tracked": 1}
    assert (missing.status_code, missing.json()) == (404, {"error": "Device not found"})
    assert found.status_code == 200
    assert found.json()["device_id"] == "device-123"

    ran = await plugin.scheduler.advance(timedelta(minutes=5))
    assert ran == 1
    assert await plugin.storage.exists("device:device-123:last_check")
    [listing] = plugin.api.get_requests(method="GET", endpoint="/devices")
    assert listing["params"]["status"] == "online"

    await plugin.disable()
    assert plugin.scheduler.get_tasks() == []
    logged = [entry["message"] for entry in plugin.logger.get_logs(level="INFO")]
    assert logged[:2] == ["Installing plugin...", "Starting plugin services..."]
    assert "New device: device-123" in logged
    assert "Checking devices..." in logged


async def test_the_spec_plugin_is_refused_an_api_call_its_manifest_lacks() -> None:
    plugin = load_test_plugin(FOLDER)
    with pytest.raises(PermissionDeniedError, match="webhooks:read"):
        await plugin.api.webhooks.list()
    assert plugin.api.get_requests() == []
