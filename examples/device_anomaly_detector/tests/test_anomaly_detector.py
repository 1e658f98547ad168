"""Tests of the Device Anomaly Detector, written the way a plugin author would.

The real plugin (main.py + plugin.yaml + config.yaml) is loaded on the
testing kit's mocks: in-memory storage, a clock the test moves, and an
in-memory Ops-Center behind plugin.api.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops_center_sdk import Plugin
from ops_center_sdk.errors import ConfigError
from ops_center_sdk.scheduler import ManualClock
from ops_center_sdk.testing import load_test_plugin, trigger_filter, trigger_hook

FOLDER = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NORMAL_CPU = [50.0, 52.0, 49.0, 51.0, 50.5, 48.5, 51.5, 50.0, 49.5, 50.5, 52.5, 47.5] * 2


@pytest.fixture
async def detector() -> Plugin:
    plugin = load_test_plugin(FOLDER, clock=ManualClock(START))
    await plugin.start()
    admin = plugin.api.admin()  # type: ignore[attr-defined]
    await admin.devices.create({"id": "web-1", "name": "Web 1", "type": "server"})
    await trigger_hook(plugin, "device.created", device_id="web-1", device_data={"name": "Web 1"})
    return plugin


async def feed(
    plugin: Plugin, device_id: str, values: list[float], metric: str = "cpu_usage"
) -> None:
    for value in values:
        await trigger_hook(
            plugin, "device.metrics_updated", device_id=device_id, metrics={metric: value}
        )


async def alerts_for(plugin: Plugin, device_id: str) -> list[dict[str, Any]]:
    return await plugin.api.admin().alerts.list(device_id=device_id)  # type: ignore[attr-defined,no-any-return]


async def test_enable_schedules_retraining_from_config(detector: Plugin) -> None:
    [task] = detector.scheduler.get_tasks()
    assert (task["name"], task["kind"], task["cron"]) == ("retrain_baselines", "cron", "0 * * * *")


async def test_normal_readings_raise_nothing(detector: Plugin) -> None:
    await feed(detector, "web-1", NORMAL_CPU)
    assert await alerts_for(detector, "web-1") == []
    assert await detector.storage.get("anomaly_count") == 0


async def test_a_spike_raises_one_warning_alert_and_is_not_learnt(detector: Plugin) -> None:
    await feed(detector, "web-1", NORMAL_CPU)
    before = await detector.storage.get("baseline:web-1:cpu_usage")
    await feed(detector, "web-1", [58.0])

    [alert] = await alerts_for(detector, "web-1")
    assert alert["severity"] == "warning"
    assert alert["title"] == "Anomalous cpu_usage on web-1"
    assert await detector.storage.get("anomaly_count") == 1
    assert await detector.storage.get("baseline:web-1:cpu_usage") == before
    assert detector.api.get_requests(method="POST", endpoint="/alerts")  # type: ignore[attr-defined]


async def test_a_huge_spike_is_critical(detector: Plugin) -> None:
    await feed(detector, "web-1", [*NORMAL_CPU, 99.0])
    [alert] = await alerts_for(detector, "web-1")
    assert alert["severity"] == "critical"


async def test_too_few_readings_are_never_judged(detector: Plugin) -> None:
    await feed(detector, "web-1", [50.0, 51.0, 99.0])
    assert await alerts_for(detector, "web-1") == []


async def test_threshold_comes_from_config() -> None:
    plugin = load_test_plugin(FOLDER, config={"threshold": 10}, clock=ManualClock(START))
    await plugin.start()
    await feed(plugin, "web-1", [*NORMAL_CPU, 58.0])
    assert await plugin.storage.get("anomaly_count") == 0


def test_a_threshold_outside_the_schema_is_refused() -> None:
    with pytest.raises(ConfigError, match="threshold") as caught:
        load_test_plugin(FOLDER, config={"threshold": 0.5})
    assert "minimum" in str(caught.value)


async def test_hourly_retraining_rebuilds_baselines_without_the_outliers(detector: Plugin) -> None:
    await feed(detector, "web-1", [*NORMAL_CPU, 99.0])
    ran = await detector.scheduler.advance(timedelta(hours=1))
    assert ran == 1
    baseline = await detector.storage.get("baseline:web-1:cpu_usage")
    assert 49.0 < baseline["mean"] < 51.0  # the 99 was left out
    assert baseline["count"] == len(NORMAL_CPU)
    assert await detector.storage.get("last_retrained_at") is not None
    await detector.scheduler.advance(timedelta(hours=5))
    [task] = detector.scheduler.get_tasks()
    assert task["run_count"] == 6


async def test_routes_report_status_stats_and_anomalies(detector: Plugin) -> None:
    await feed(detector, "web-1", [*NORMAL_CPU, 99.0])
    transport = httpx.ASGITransport(app=detector.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        status = (await client.get("/plugins/device-anomaly-detector/status")).json()
        stats = await client.get("/plugins/device-anomaly-detector/devices/web-1/stats")
        missing = await client.get("/plugins/device-anomaly-detector/devices/nope/stats")
        anomalies = await client.get(
            "/plugins/device-anomaly-detector/anomalies", params={"device_id": "web-1"}
        )
        bad_limit = await client.get(
            "/plugins/device-anomaly-detector/anomalies", params={"limit": 0}
        )
    assert status["devices_tracked"] == 1
    assert status["anomalies_detected"] == 1
    assert stats.json()["baselines"]["cpu_usage"]["samples"] == len(NORMAL_CPU)
    assert missing.status_code == 404
    [anomaly] = anomalies.json()["anomalies"]
    assert (anomaly["metric"], anomaly["value"]) == ("cpu_usage", 99.0)
    assert bad_limit.status_code == 422


async def test_deleting_a_device_forgets_it(detector: Plugin) -> None:
    await feed(detector, "web-1", NORMAL_CPU)
    await trigger_hook(
        detector, "device.deleted", device_id="web-1", device_data={"name": "Web server"}
    )
    assert await detector.storage.list_keys("*web-1*") == []
    assert detector.logger.get_logs(level="INFO")[-1]["message"] == (
        "Forgetting deleted device: Web server"
    )


async def test_devices_are_marked_as_monitored_before_they_are_stored(detector: Plugin) -> None:
    data = await trigger_filter(detector, "device.data.process", {"name": "db-1", "type": "vm"})
    assert data == {
        "name": "db-1",
        "type": "vm",
        "anomaly_detection": {"enabled": True, "threshold": 3.0},
    }


async def test_non_numeric_metrics_are_ignored(detector: Plugin) -> None:
    await trigger_hook(
        detector,
        "device.metrics_updated",
        device_id="web-1",
        metrics={"state": "ok", "up": True, "temp": float("nan")},
    )
    assert await detector.storage.list_keys("baseline:*") == []
