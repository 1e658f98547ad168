"""The plugin the host benchmark runs: a device.created hook that notes its latency, a route.

Served alone (``uvicorn main:app``) or through the host (``host_app.py``).
"""

from __future__ import annotations

import time
from typing import Any

from ops_center_sdk import Plugin

plugin = Plugin(id="bench-host-plugin", version="1.0.0")
latencies: list[float] = []


@plugin.hook("device.created")
async def on_device_created(device_id: str, device_data: dict[str, Any]) -> None:
    sent_at = device_data.get("metadata", {}).get("sent_at")
    if sent_at is not None:
        latencies.append(time.time() - sent_at)


@plugin.route("/status", methods=["GET"])
async def get_status() -> dict[str, Any]:
    return {"status": "running", "version": "1.0.0", "devices_tracked": 3}


@plugin.route("/latencies", methods=["GET"])
async def get_latencies() -> dict[str, Any]:
    return {"count": len(latencies), "seconds": latencies}


@plugin.route("/latencies", methods=["DELETE"])
async def reset_latencies() -> dict[str, Any]:
    latencies.clear()
    return {"count": 0}


app = plugin.create_app()
