"""Plugins run as their own process give the same results as in the host's process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from process_kit import (
    EXAMPLE,
    SPEC_PLUGIN,
    ServedHost,
    copy_plugin,
    eventually,
    free_port,
    is_running,
    served_host,
)

from dev_server import DevServer

pytestmark = pytest.mark.slow


async def alerts_for(host: ServedHost, device_id: str) -> list[dict[str, Any]]:
    found = await host.get(f"/api/v1/alerts?device_id={device_id}")
    items: list[dict[str, Any]] = found["items"]
    return items


@pytest.mark.parametrize("mode", ["in_process", "process"])
async def test_the_spec_plugin_gives_the_same_results_in_either_mode(
    mode: str, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_plugin(SPEC_PLUGIN, tmp_path / "spec-plugin")
    async with served_host(data_dir) as host:
        described = await host.install(folder, mode=mode)
        assert (described["mode"], described["status"], described["state"]) == (
            mode,
            "enabled",
            "running",
        )
        assert described["events"] == ["device.created"]
        assert described["filters"] == ["device.data.process"]
        assert {r["path"] for r in described["routes"]} == {
            "/plugins/my-plugin/status",
            "/plugins/my-plugin/devices/{device_id}/stats",
        }

        # filter (inline, before the write) -> hook -> the plugin's own API call
        created = await host.http.post("/api/v1/devices", json={"id": "web-1", "name": "Web 1"})
        assert created.status_code == 201
        assert created.json()["plugin_processed"] is True
        [alert] = await eventually(lambda: alerts_for(host, "web-1"), "the plugin's alert")
        assert (alert["title"], alert["message"]) == ("Device Registered", "New device Web 1 added")

        # routes, through the host
        status = await host.get("/plugins/my-plugin/status")
        assert status == {"status": "running", "version": "1.0.0", "devices_tracked": 1}
        assert (await host.http.get("/plugins/my-plugin/devices/web-1/stats")).status_code == 200
        missing = await host.http.get("/plugins/my-plugin/devices/nope/stats")
        assert (missing.status_code, missing.json()) == (404, {"error": "Device not found"})

        logs = await host.get("/api/v1/plugins/my-plugin/logs")
        messages = [record["message"] for record in logs["items"]]
        assert "New device: web-1" in messages
        assert messages[0] == "Installing plugin..."
        health = await host.get("/api/v1/plugins/my-plugin/health")
        assert health["healthy"] is True
        [task] = health["scheduled_tasks"]
        assert task["name"] == "check_devices"

        if mode == "process":
            process = health["process"]
            assert process["pid"] != os.getpid()
            assert process["url"].startswith("http://127.0.0.1:")
            assert (process["delivered"], process["dead_letters"]) == (1, 0)
            # the plugin app's own docs, through the proxy
            docs = await host.http.get("/plugins/my-plugin/openapi.json")
            assert "/plugins/my-plugin/status" in docs.json()["paths"]

        # disabled: its routes answer 503 and its process is gone
        await host.http.post("/api/v1/plugins/my-plugin/disable")
        assert (await host.http.get("/plugins/my-plugin/status")).status_code == 503
        stopped = await host.get("/api/v1/plugins/my-plugin")
        assert (stopped["state"], stopped["healthy"]) == ("stopped", False)


def test_dev_process_runs_the_example_as_its_own_process(
    tmp_path: Path, data_dir: Path, plugin_pids: list[int]
) -> None:
    folder = copy_plugin(EXAMPLE, tmp_path / "detector")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OPS_CENTER_API_KEY": "dev-key"}
    env.pop("OPS_CENTER_STORAGE_URL", None)
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(folder), "--process"]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    dev = DevServer(command, env, tmp_path)
    http = httpx.Client(base_url=base, headers={"Authorization": "Bearer dev-key"}, timeout=10)
    try:
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host")
        plugin = http.get("/api/v1/plugins/device-anomaly-detector").json()
        assert (plugin["mode"], plugin["status"], plugin["state"]) == (
            "process",
            "enabled",
            "running",
        )
        pid = plugin["process"]["pid"]
        plugin_pids.append(pid)
        assert pid not in (os.getpid(), dev.process.pid)
        assert f"its own process: pid {pid}" in dev.output

        assert http.post("/api/v1/devices", json={"id": "web-1", "name": "Web"}).status_code == 201
        for value in (41, 43, 40, 42, 44, 41, 43, 42, 40, 42, 43, 41, 99):
            response = http.post("/api/v1/devices/web-1/metrics", json={"cpu_usage": value})
            assert response.is_success
        [alert] = dev.wait_until(
            lambda: http.get("/api/v1/alerts").json()["items"], "the anomaly alert"
        )
        assert (alert["device_id"], alert["severity"]) == ("web-1", "critical")
        status = http.get("/plugins/device-anomaly-detector/status").json()
        assert (status["devices_tracked"], status["anomalies_detected"]) == (1, 1)
        device = http.get("/api/v1/devices/web-1").json()
        assert device["anomaly_detection"] == {"enabled": True, "threshold": 3.0}  # its filter
        [anomaly] = http.get("/plugins/device-anomaly-detector/anomalies").json()["anomalies"]
        assert (anomaly["metric"], anomaly["value"]) == ("cpu_usage", 99)
    finally:
        http.close()
        code = dev.stop()
    assert code == 0, dev.output
    assert not is_running(pid), "the plugin process outlived the dev host"
