"""GET /plugins/{id}/logs and /health: what the plugin logged, how its hooks and tasks fare."""

from __future__ import annotations

from pathlib import Path

from plugin_kit import RunningHost, error_of, write_plugin

CHATTY = """
from ops_center_sdk import Plugin

plugin = Plugin(id="chatty", version="1.0.0")


async def tick():
    pass


@plugin.on_enable
async def on_enable():
    plugin.logger.debug("debugging")
    await plugin.scheduler.schedule(cron="*/5 * * * *", task_name="tick", handler=tick)


@plugin.hook("device.created")
async def on_created(device_id):
    plugin.logger.info(f"created {device_id}")
    plugin.logger.warning(f"suspicious {device_id}")
    if device_id == "bad":
        raise ValueError("bad device")
"""


async def test_logs_hold_what_the_plugin_logged_filtered_by_level_and_limit(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_plugin(plugins_dir / "chatty", "chatty", CHATTY))
    for device_id in ("d1", "d2", "bad"):
        await host.http.post("/api/v1/devices", json={"id": device_id, "name": device_id})
    await host.settle()

    everything = (await host.http.get("/api/v1/plugins/chatty/logs")).json()
    messages = [entry["message"] for entry in everything["items"]]
    # Only the plugin's own records: the SDK's report of the failing hook is not among them.
    assert messages == [
        "created d1",
        "suspicious d1",
        "created d2",
        "suspicious d2",
        "created bad",
        "suspicious bad",
    ]
    first = everything["items"][0]
    assert (first["level"], first["event"], first["logger"]) == (
        "INFO",
        "device.created",
        "ops_center.plugins.chatty",
    )
    warnings = (
        await host.http.get("/api/v1/plugins/chatty/logs", params={"level": "warning", "limit": 2})
    ).json()
    assert [entry["message"] for entry in warnings["items"]] == ["suspicious d2", "suspicious bad"]
    bad_level = await host.http.get("/api/v1/plugins/chatty/logs", params={"level": "loud"})
    assert bad_level.status_code == 422
    assert error_of(bad_level)["details"][0]["field"] == "query.level"
    bad_limit = await host.http.get("/api/v1/plugins/chatty/logs", params={"limit": 0})
    assert bad_limit.status_code == 422


async def test_health_reports_hooks_failures_and_scheduled_tasks(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_plugin(plugins_dir / "chatty", "chatty", CHATTY))
    healthy = (await host.http.get("/api/v1/plugins/chatty/health")).json()
    assert (healthy["status"], healthy["last_error"], healthy["hook_failures"]) == (
        "enabled",
        None,
        0,
    )
    assert [task["name"] for task in healthy["scheduled_tasks"]] == ["tick"]
    assert healthy["scheduled_tasks"][0]["cron"] == "*/5 * * * *"

    await host.http.post("/api/v1/devices", json={"id": "d1", "name": "d1"})
    await host.http.post("/api/v1/devices", json={"id": "bad", "name": "bad"})
    await host.settle()
    health = (await host.http.get("/api/v1/plugins/chatty/health")).json()
    hook = next(h for h in health["hooks"] if h["hook"] == "device.created")
    assert (hook["calls"], hook["failures"]) == (2, 1)
    assert health["hook_failures"] == 1
    assert health["last_error"]["hook"] == "device.created"
    assert "ValueError: bad device" in health["last_error"]["message"]

    await host.http.post("/api/v1/plugins/chatty/disable")
    disabled = (await host.http.get("/api/v1/plugins/chatty/health")).json()
    assert (disabled["status"], disabled["enabled"]) == ("disabled", False)
