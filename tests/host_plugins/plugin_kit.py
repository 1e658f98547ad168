"""Helpers of the plugin-host tests: plugin folders on disk and a running host in memory."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from ops_center_sdk.host.plugin_host import PluginHost
from ops_center_sdk.host.server import create_server_app

ADMIN_KEY = "admin-test-key"

#: A plugin that runs a filter, a hook calling the API back, and a route.
RECORDER = """
from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", version="1.0.0")


@plugin.on_install
async def on_install():
    await plugin.storage.increment("installs")


@plugin.on_enable
async def on_enable():
    await plugin.storage.increment("enables")


@plugin.filter_hook("device.data.process", priority={priority})
async def mark(data):
    metadata = dict(data.get("metadata") or {{}})
    metadata["order"] = [*metadata.get("order", []), "{id}"]
    data["metadata"] = metadata
    return data


@plugin.hook("device.created")
async def on_created(device_id, device_data):
    plugin.logger.info(f"saw {{device_id}}")
    await plugin.storage.set(f"device:{{device_id}}", device_data)
    await plugin.api.alerts.create(
        {{"device_id": device_id, "severity": "info", "title": f"{id} saw {{device_id}}"}}
    )


@plugin.route("/status")
async def status():
    return {{
        "devices": len(await plugin.storage.list_keys("device:*")),
        "installs": await plugin.storage.get("installs"),
        "enables": await plugin.storage.get("enables"),
        "threshold": plugin.config.get("threshold"),
    }}
"""

RECORDER_MANIFEST = """\
permissions: [devices:read, alerts:write]
config_schema:
  type: object
  additionalProperties: false
  properties:
    threshold: {type: number, minimum: 0, maximum: 10, default: 3}
"""


def write_plugin(
    folder: Path,
    plugin_id: str,
    main: str,
    manifest: str = "",
    *,
    files: dict[str, str] | None = None,
) -> Path:
    """A plugin folder: plugin.yaml (id, name, version + ``manifest``) and main.py."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(
        f"id: {plugin_id}\nname: {plugin_id}\nversion: 1.0.0\n" + textwrap.dedent(manifest),
        encoding="utf-8",
    )
    (folder / "main.py").write_text(textwrap.dedent(main), encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def write_recorder(root: Path, plugin_id: str = "recorder", *, priority: int = 10) -> Path:
    """The recorder plugin (filter + hook + API call + route) in ``root/<plugin_id>``."""
    return write_plugin(
        root / plugin_id,
        plugin_id,
        RECORDER.format(id=plugin_id, priority=priority),
        RECORDER_MANIFEST,
    )


@dataclass
class RunningHost:
    """A served host in memory: the app, its plugin host, and an admin client."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def plugins(self) -> PluginHost:
        host: PluginHost = self.app.state.plugins
        return host

    def client(self, key: str | None) -> httpx.AsyncClient:
        """Another client of the same app, sending ``key``."""
        return client_for(self.app, key)

    async def settle(self) -> None:
        """Wait until every queued event (and the events they cause) is delivered."""
        await self.app.state.bus.drain()

    async def install(self, folder: Path, **body: Any) -> httpx.Response:
        return await self.http.post("/api/v1/plugins", json={"path": str(folder), **body})

    def module(self, plugin_id: str) -> Any:
        """The plugin's imported entrypoint module (to reach its globals)."""
        loaded = self.plugins.get(plugin_id).loaded
        assert loaded is not None
        return loaded.module


def client_for(app: FastAPI, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ops.test", headers=headers
    )


@asynccontextmanager
async def running_host(
    data_dir: Path | None, plugins: Sequence[Path] = ()
) -> AsyncIterator[RunningHost]:
    """The server app on ``data_dir`` with its lifespan running (startup to shutdown)."""
    app = create_server_app(data_dir=data_dir, admin_key=ADMIN_KEY, plugins=plugins)
    async with app.router.lifespan_context(app), client_for(app) as http:
        yield RunningHost(app, http)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a response in the one JSON error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["message"]
    return error
