"""The testing kit: mocks are the real components, and they catch real plugin bugs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops_center_sdk.api import NotFoundError, PermissionDeniedError, ValidationError
from ops_center_sdk.errors import ConfigError, HookError, UnknownEventError
from ops_center_sdk.scheduler import ManualClock
from ops_center_sdk.testing import (
    MockAPIClient,
    MockConfig,
    MockLogger,
    MockScheduler,
    MockStorage,
    create_test_plugin,
    trigger_hook,
)

START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the mocks are real


async def test_mock_api_validates_paginates_and_errors_like_the_host() -> None:
    api = MockAPIClient()
    for n in range(5):
        await api.devices.create({"id": f"d{n}", "name": f"Device {n}", "status": "online"})
    assert [d["id"] for d in await api.devices.list(page=2, page_size=2)] == ["d2", "d3"]
    assert len([d async for d in api.devices.iterate(page_size=2)]) == 5
    with pytest.raises(ValidationError, match="title"):
        await api.alerts.create({"severity": "warning"})
    with pytest.raises(NotFoundError, match="nope"):
        await api.devices.get("nope")
    assert [r["status"] for r in api.get_requests(method="GET", endpoint="/devices/nope")] == [404]
    api.reset()
    assert api.get_requests() == []


async def test_mock_api_with_permissions_refuses_before_any_request() -> None:
    api = MockAPIClient(permissions=["devices:read"])
    with pytest.raises(PermissionDeniedError, match="devices:write"):
        await api.devices.create({"name": "x"})
    assert api.get_requests() == []
    assert await api.devices.list() == []


async def test_get_requests_filters_by_method_endpoint_and_glob() -> None:
    api = MockAPIClient()
    await api.devices.create({"id": "d1", "name": "x"})
    await api.devices.get("d1")
    await api.alerts.create({"title": "t", "severity": "info"})
    assert len(api.get_requests()) == 3
    assert len(api.get_requests(method="POST")) == 2
    assert len(api.get_requests(endpoint="/alerts")) == 1
    assert [r["method"] for r in api.get_requests(endpoint="/devices*")] == ["POST", "GET"]


async def test_mock_storage_is_the_storage_api_with_expiry_on_the_test_clock() -> None:
    clock = ManualClock(START)
    storage = MockStorage("p", clock=clock)
    await storage.set("session", {"user": "u"}, ttl=60)
    with pytest.raises(TypeError, match="'bad'"):
        await storage.set("bad", {1, 2})
    clock.advance(timedelta(seconds=61))
    assert await storage.get("session") is None


async def test_mock_scheduler_runs_due_tasks_in_order() -> None:
    scheduler = MockScheduler(clock=ManualClock(START))
    order: list[str] = []

    async def record(name: str) -> None:
        order.append(name)

    await scheduler.run_in(timedelta(minutes=7), record, "once")
    await scheduler.schedule(cron="*/5 * * * *", task_name="tick", handler=record, args=("tick",))
    assert await scheduler.advance(timedelta(minutes=10)) == 3
    assert order == ["tick", "once", "tick"]
    assert await scheduler.run_due() == 0


async def test_mock_config_enforces_the_schema() -> None:
    config = MockConfig(
        {"threshold": 0.5},
        schema={
            "type": "object",
            "properties": {"threshold": {"type": "number", "maximum": 1}},
        },
    )
    with pytest.raises(ConfigError, match="maximum"):
        config.set("threshold", 3)
    assert config.get("threshold") == 0.5


def test_mock_logger_captures_by_level() -> None:
    logger = MockLogger("p")
    logger.info("a")
    logger.error("b")
    assert [entry["message"] for entry in logger.get_logs(level="ERROR")] == ["b"]
    assert len(logger.get_logs()) == 2
    logger.clear()
    assert logger.get_logs() == []


def test_mock_logger_level_aliases_and_numbers_find_the_records() -> None:
    logger = MockLogger("p")
    logger.warning("w")
    logger.critical("c")
    assert [entry["message"] for entry in logger.get_logs(level="WARN")] == ["w"]
    assert [entry["message"] for entry in logger.get_logs(level="warning")] == ["w"]
    assert [entry["message"] for entry in logger.get_logs(level="FATAL")] == ["c"]
    assert [entry["message"] for entry in logger.get_logs(level=50)] == ["c"]
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        logger.get_logs(level="LOUD")


def test_create_test_plugin_accepts_metadata_and_config() -> None:
    plugin = create_test_plugin(
        "my-plugin", name="My Plugin", version="1.0.0", config={"anything": [1, 2]}
    )
    assert (plugin.metadata.name, plugin.metadata.version) == ("My Plugin", "1.0.0")
    assert plugin.config.get("anything") == [1, 2]
    plugin.config.set("other", True)


# ---------------------------------------------------------------- bad input, clear errors


async def test_triggering_an_unknown_event_says_did_you_mean() -> None:
    plugin = create_test_plugin()
    with pytest.raises(UnknownEventError, match=r"device\.created"):
        await trigger_hook(plugin, "device.creatd", device_id="d")


async def test_triggering_without_a_keyword_the_event_carries_names_it() -> None:
    plugin = create_test_plugin()

    @plugin.hook("device.created")
    async def on_created(device_id: str, device_data: dict[str, Any]) -> None: ...

    with pytest.raises(HookError, match="device_data"):
        await trigger_hook(plugin, "device.created", device_id="d")


async def test_advancing_the_clock_backwards_is_refused() -> None:
    plugin = create_test_plugin(clock=ManualClock(START))
    with pytest.raises(ValueError, match="zero or more"):
        await plugin.scheduler.advance(timedelta(minutes=-1))  # type: ignore[attr-defined]


async def test_trigger_hook_keeps_the_mock_host_consistent_with_device_events() -> None:
    plugin = create_test_plugin()

    @plugin.hook("device.created")
    async def on_device_created(device_id: str, device_data: dict[str, Any]) -> None:
        # the spec's example: an alert about the new device
        await plugin.api.alerts.create(
            {
                "device_id": device_id,
                "severity": "info",
                "title": "Device Registered",
                "message": f"New device {device_data['name']} added",
            }
        )

    await trigger_hook(
        plugin, "device.created", device_id="device-123", device_data={"name": "Test Device"}
    )
    admin = plugin.api.admin()  # type: ignore[attr-defined]
    assert (await admin.devices.get("device-123"))["name"] == "Test Device"
    [alert] = await admin.alerts.list(device_id="device-123")
    assert alert["title"] == "Device Registered"
    assert [r["endpoint"] for r in plugin.api.get_requests()] == ["/alerts"]  # type: ignore[attr-defined]

    await trigger_hook(plugin, "device.deleted", device_id="device-123")
    with pytest.raises(NotFoundError):
        await admin.devices.get("device-123")


async def test_device_deleted_carries_the_record_the_mock_host_held() -> None:
    plugin = create_test_plugin()
    seen: list[tuple[str, dict[str, Any]]] = []

    @plugin.hook("device.deleted")
    async def on_device_deleted(device_id: str, device_data: dict[str, Any]) -> None:
        seen.append((device_id, device_data))  # the spec's signature

    admin = plugin.api.admin()  # type: ignore[attr-defined]
    stored = await admin.devices.create({"id": "web-1", "name": "Web", "status": "online"})
    await trigger_hook(plugin, "device.deleted", device_id="web-1")
    assert seen == [("web-1", stored)]  # as the host would send it: the whole record
    with pytest.raises(NotFoundError):
        await admin.devices.get("web-1")

    # a device the mock host never held: the least a record can be
    await trigger_hook(plugin, "device.deleted", device_id="ghost")
    assert seen[-1] == ("ghost", {"id": "ghost"})

    # device_data given: passed as given, and the device is gone from the mock host
    await admin.devices.create({"id": "db-1", "name": "Database"})
    await trigger_hook(plugin, "device.deleted", device_id="db-1", device_data={"name": "DB"})
    assert seen[-1] == ("db-1", {"name": "DB"})
    with pytest.raises(NotFoundError):
        await admin.devices.get("db-1")

    with pytest.raises(HookError, match=r"missing keywords 'device_id', 'device_data'"):
        await trigger_hook(plugin, "device.deleted")
    assert len(seen) == 3
