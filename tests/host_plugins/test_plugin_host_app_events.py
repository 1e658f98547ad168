"""In the host's process: a plugin app's ``@app.on_event`` handlers run, ``/health`` is keyless."""

from __future__ import annotations

from pathlib import Path

from plugin_kit import RunningHost, error_of, write_plugin

from ops_center_sdk.host.plugin_routes import is_keyless
from ops_center_sdk.route_access import RouteAccess, RouteRule

EVENTS_MAIN = """
import warnings

from ops_center_sdk import Plugin

warnings.simplefilter("ignore", DeprecationWarning)

plugin = Plugin(id="{id}", version="1.0.0")
app = plugin.create_app()
calls = []


@plugin.on_enable
async def on_enable():
    calls.append("on_enable")


@app.on_event("startup")
async def startup():
    calls.append("startup")
{extra}

@app.on_event("shutdown")
def shutdown():
    calls.append("shutdown")


@plugin.route("/status")
async def status():
    return {{"calls": calls}}
"""

FAILING_STARTUP = """

@app.on_event("startup")
async def connect():
    raise ConnectionError("broker down")
"""


async def test_startup_runs_when_the_host_enables_and_shutdown_when_it_disables(
    host: RunningHost, plugins_dir: Path
) -> None:
    folder = write_plugin(
        plugins_dir / "events", "events", EVENTS_MAIN.format(id="events", extra="")
    )
    installed = await host.install(folder)
    assert installed.status_code == 201, installed.text
    assert installed.json()["status"] == "enabled"
    status = await host.http.get("/plugins/events/status")
    assert status.json() == {"calls": ["on_enable", "startup"]}

    assert (await host.http.post("/api/v1/plugins/events/disable")).status_code == 200
    assert host.module("events").calls == ["on_enable", "startup", "shutdown"]


async def test_a_failing_startup_handler_fails_the_enable_naming_its_line(
    host: RunningHost, plugins_dir: Path
) -> None:
    main = EVENTS_MAIN.format(id="bad-startup", extra=FAILING_STARTUP)
    folder = write_plugin(plugins_dir / "bad-startup", "bad-startup", main)
    response = await host.install(folder)
    assert response.status_code == 201  # installed; it just does not run, as with on_enable
    assert response.json()["status"] == "error"
    line = main.splitlines().index('    raise ConnectionError("broker down")') + 1
    assert (
        f"{folder / 'main.py'}:{line}: ConnectionError: broker down"
        in response.json()["error"]["message"]
    )
    route = await host.http.get("/plugins/bad-startup/status")
    assert route.status_code == 503
    # as under Starlette: the handlers after the failing one, and shutdown, do not run
    assert host.module("bad-startup").calls == ["on_enable", "startup"]


async def test_liveness_through_the_host_needs_no_key(host: RunningHost, plugins_dir: Path) -> None:
    folder = write_plugin(
        plugins_dir / "events", "events", EVENTS_MAIN.format(id="events", extra="")
    )
    assert (await host.install(folder)).status_code == 201
    async with host.client(None) as anonymous:
        health = await anonymous.get("/plugins/events/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "plugin": "events", "version": "1.0.0"}

    assert (await host.http.post("/api/v1/plugins/events/disable")).status_code == 200
    async with host.client(None) as anonymous:
        stopped = await anonymous.get("/plugins/events/health")
    assert stopped.status_code == 503
    assert "disabled" in error_of(stopped)["message"]


def test_the_key_check_skips_only_the_sdk_liveness_path() -> None:
    plain = RouteAccess([RouteRule("/plugins/plain/status", ("GET",), False)])
    assert is_keyless("plain", plain, "GET", "/plugins/plain/health")
    assert is_keyless("plain", plain, "HEAD", "/plugins/plain/health")
    assert not is_keyless("plain", plain, "POST", "/plugins/plain/health")
    assert not is_keyless("plain", plain, "GET", "/plugins/plain/status")
    assert not is_keyless("plain", plain, "GET", "/plugins/other/health")
    own = RouteAccess([RouteRule("/plugins/own/health", ("GET",), False)])
    assert not is_keyless("own", own, "GET", "/plugins/own/health")
    mine_public = RouteAccess([RouteRule("/plugins/own/health", ("GET",), True)])
    assert is_keyless("own", mine_public, "GET", "/plugins/own/health")
