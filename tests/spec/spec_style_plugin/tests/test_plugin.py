from ops_center_sdk.testing import trigger_hook
import pytest


@pytest.mark.asyncio
async def test_startup_handler_runs_when_the_plugin_starts(plugin_under_test):
    await plugin_under_test.start()

    assert await plugin_under_test.storage.get("startups") == 1

    await plugin_under_test.stop()
    assert await plugin_under_test.storage.get("shutdowns") == 1


@pytest.mark.asyncio
async def test_new_devices_are_counted(plugin_under_test):
    await trigger_hook(
        plugin_under_test,
        "device.created",
        device_id="device-123",
        device_data={"name": "Test Device"}
    )

    assert await plugin_under_test.storage.get("known_devices") == 1


@pytest.mark.asyncio
async def test_deleted_device_raises_an_alert(plugin_under_test):
    await trigger_hook(
        plugin_under_test,
        "device.deleted",
        device_id="device-123",
        device_data={"name": "Test Device"}
    )

    assert await plugin_under_test.storage.get("deleted:device-123") == {"name": "Test Device"}
    requests = plugin_under_test.api.get_requests(method="POST", endpoint="/alerts")
    assert len(requests) == 1
    assert requests[0]["status"] == 201
    alert = await plugin_under_test.api.admin().alerts.list()
    assert alert[0]["title"] == "Device Test Device was deleted"
    assert alert[0]["severity"] == "info"
    assert alert[0]["device_id"] == "device-123"


@pytest.mark.asyncio
async def test_status_route(plugin_client):
    response = await plugin_client.get("/plugins/spec-style-plugin/status")

    assert response.status_code == 200
    assert response.json()["deleted"] == []


@pytest.mark.asyncio
async def test_health(plugin_client):
    response = await plugin_client.get("/health")

    assert response.json() == {"status": "ok", "plugin": "spec-style-plugin", "version": "1.0.0"}
