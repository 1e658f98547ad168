"""As its own process: the plugin app's ``@app.on_event`` handlers run with enable and disable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from process_kit import served_host, write_plugin

pytestmark = pytest.mark.slow

EVENTS_MAIN = """
import warnings

from ops_center_sdk import Plugin

warnings.simplefilter("ignore", DeprecationWarning)

plugin = Plugin(id="{id}", version="1.0.0")
app = plugin.create_app()


@app.on_event("startup")
async def startup():
    {startup}


@app.on_event("shutdown")
async def shutdown():
    await plugin.storage.increment("shutdowns")


@plugin.route("/status")
async def status():
    return {{
        "startups": await plugin.storage.get("startups", default=0),
        "shutdowns": await plugin.storage.get("shutdowns", default=0),
    }}
"""


async def test_startup_and_shutdown_run_in_the_plugin_process(
    tmp_path: Path, data_dir: Path
) -> None:
    main = EVENTS_MAIN.format(id="events", startup='await plugin.storage.increment("startups")')
    folder = write_plugin(tmp_path / "events", "events", main)
    async with served_host(data_dir) as host:
        described = await host.install(folder, mode="process")
        assert (described["status"], described["mode"]) == ("enabled", "process")
        assert await host.get("/plugins/events/status") == {"startups": 1, "shutdowns": 0}
        async with httpx.AsyncClient(base_url=host.url, timeout=5) as anonymous:
            health = await anonymous.get("/plugins/events/health")
        assert health.json() == {"status": "ok", "plugin": "events", "version": "1.0.0"}

        assert (await host.http.post("/api/v1/plugins/events/disable")).status_code == 200
        assert (await host.http.post("/api/v1/plugins/events/enable")).status_code == 200
        assert await host.get("/plugins/events/status") == {"startups": 2, "shutdowns": 1}


async def test_a_failing_startup_handler_fails_the_enable_like_on_enable(
    tmp_path: Path, data_dir: Path
) -> None:
    main = EVENTS_MAIN.format(id="bad-startup", startup='raise ConnectionError("broker down")')
    folder = write_plugin(tmp_path / "bad-startup", "bad-startup", main)
    async with served_host(data_dir) as host:
        response = await host.http.post(
            "/api/v1/plugins", json={"path": str(folder), "mode": "process"}
        )
        assert response.status_code == 201, response.text  # installed; it does not run
        described = response.json()
        assert described["status"] == "error"
        assert "enable failed: ConnectionError: broker down" in described["error"]["message"]
        route = await host.http.get("/plugins/bad-startup/status")
        assert route.status_code == 503
