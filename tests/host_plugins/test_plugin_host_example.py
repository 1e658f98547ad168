"""The example plugin inside the host: metrics in, an alert out through its own API key."""

from __future__ import annotations

from pathlib import Path

from plugin_kit import running_host

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "device_anomaly_detector"


async def test_anomaly_detector_raises_an_alert_on_a_spike(data_dir: Path) -> None:
    async with running_host(data_dir, plugins=[EXAMPLE]) as host:
        assert host.plugins.get("device-anomaly-detector").enabled
        await host.http.post("/api/v1/devices", json={"id": "web-1", "name": "Web server"})
        for value in (41, 43, 40, 42, 44, 41, 43, 42, 40, 42, 43, 41):
            pushed = await host.http.post(
                "/api/v1/devices/web-1/metrics", json={"cpu_usage": value}
            )
            assert pushed.status_code == 200
        await host.settle()
        assert (await host.http.get("/api/v1/alerts")).json()["total"] == 0
        await host.http.post("/api/v1/devices/web-1/metrics", json={"cpu_usage": 99})
        await host.settle()

        alerts = (await host.http.get("/api/v1/alerts")).json()["items"]
        assert [(a["device_id"], a["severity"], a["title"]) for a in alerts] == [
            ("web-1", "critical", "Anomalous cpu_usage on web-1")
        ]
        status = (await host.http.get("/plugins/device-anomaly-detector/status")).json()
        assert (status["devices_tracked"], status["anomalies_detected"]) == (1, 1)
        stats = (await host.http.get("/plugins/device-anomaly-detector/devices/web-1/stats")).json()
        assert stats["baselines"]["cpu_usage"]["samples"] == 12

    async with running_host(data_dir) as host:  # restarted: its data is still there
        status = (await host.http.get("/plugins/device-anomaly-detector/status")).json()
        assert (status["devices_tracked"], status["anomalies_detected"]) == (1, 1)
