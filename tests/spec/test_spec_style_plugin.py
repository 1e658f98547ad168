"""A plugin written from the spec by someone else (``spec_style_plugin/``) runs unchanged.

It declares each form a spec reader writes: ``@app.on_event("startup")`` and
``("shutdown")`` on the app ``create_app()`` returns, ``on_device_deleted(device_id,
device_data)``, ``devices.list(page_size=1000)`` and an alert without ``severity``.
Here it imports, serves on its own (``serve``), runs under the real local
Ops-Center (``dev``, in the host's process and as its own process) with the
events fired through the REST API, and its own tests pass in its own folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev_server import DevServer
from ops_center_sdk.loader import load_plugin
from ops_center_sdk.validation import validate_plugin

SOURCE = Path(__file__).with_name("spec_style_plugin")
PLUGIN_ID = "spec-style-plugin"
ADMIN_KEY = "spec-style-admin-key"
LIVENESS = {"status": "ok", "plugin": PLUGIN_ID, "version": "1.0.0"}

pytestmark = [
    pytest.mark.slow,
    # FastAPI marks on_event deprecated; code written against the spec uses it all the same
    pytest.mark.filterwarnings("ignore:\\s*on_event is deprecated:DeprecationWarning"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the plugin, as its author has it: nothing of this repository around it."""
    return Path(
        shutil.copytree(
            SOURCE, tmp_path / "spec-style-plugin", ignore=shutil.ignore_patterns("__pycache__")
        )
    )


def environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "OPS_CENTER_API_KEY": ADMIN_KEY, "NO_PROXY": "127.0.0.1,localhost"}
    env["OPS_CENTER_DATA_DIR"] = str(tmp_path / "plugin-data")
    for name in ("OPS_CENTER_STORAGE_URL", "OPS_CENTER_MANAGED", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    return env


def test_it_imports_with_every_spec_style_handler(folder: Path) -> None:
    loaded = load_plugin(folder)
    events = loaded.plugin.hooks.events()
    assert {"device.created", "device.deleted"} <= set(events)
    app = loaded.module.app
    assert [h.__name__ for h in app.router.on_startup] == ["startup"]
    assert [h.__name__ for h in app.router.on_shutdown] == ["shutdown"]


def test_validate_finds_nothing_to_fix(folder: Path) -> None:
    report = validate_plugin(folder)
    assert report.findings == (), [str(finding) for finding in report.findings]


def test_its_own_tests_pass_unchanged_in_its_folder(folder: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout


@pytest.fixture
def running() -> Iterator[list[DevServer]]:
    """The servers a test starts; each is stopped by its PID if still running."""
    servers: list[DevServer] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.stop()


def start(
    running: list[DevServer], command: list[str], env: dict[str, str], cwd: Path, ready: str
) -> DevServer:
    server = DevServer(command, env, cwd)
    running.append(server)
    with httpx.Client(timeout=5, trust_env=False) as http:
        server.wait_until(lambda: http.get(ready).status_code == 200, ready)
    return server


def test_serve_runs_startup_and_shutdown_handlers(
    folder: Path, tmp_path: Path, running: list[DevServer]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "ops_center_sdk", "serve", str(folder), "--port", str(port)]
    env = environment(tmp_path)
    with httpx.Client(base_url=url, timeout=5, trust_env=False) as http:
        server = start(running, command, env, tmp_path, f"{url}/health")
        assert http.get("/health").json() == LIVENESS
        assert http.get(f"/plugins/{PLUGIN_ID}/health").json() == LIVENESS
        first = http.get(f"/plugins/{PLUGIN_ID}/status").json()
        assert (first["startups"], first["shutdowns"]) == (1, 0)
        assert server.stop() == 0, server.output

        # its storage is on disk: the second run sees that the first one shut down
        server = start(running, command, env, tmp_path, f"{url}/health")
        second = http.get(f"/plugins/{PLUGIN_ID}/status").json()
        assert (second["startups"], second["shutdowns"]) == (2, 1)
        assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output


@pytest.mark.parametrize("mode", ["in_process", "process"])
def test_under_dev_the_events_reach_it_and_its_alert_is_kept(
    mode: str, folder: Path, tmp_path: Path, running: list[DevServer]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(folder), "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "data")]
    if mode == "process":
        command.append("--process")
    server = start(running, command, environment(tmp_path), tmp_path, f"{url}/api/v1/health")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with (
        httpx.Client(base_url=url, headers=headers, timeout=5, trust_env=False) as http,
        httpx.Client(base_url=url, timeout=5, trust_env=False) as anonymous,
    ):

        def status() -> dict[str, Any]:
            response = http.get(f"/plugins/{PLUGIN_ID}/status")
            return response.json() if response.status_code == 200 else {}

        first = server.wait_until(status, "the plugin's routes")
        assert (first["startups"], first["shutdowns"]) == (1, 0)
        health = anonymous.get(f"/plugins/{PLUGIN_ID}/health")
        assert (health.status_code, health.json()) == (200, LIVENESS)

        device = {"id": "device-1", "name": "Web 1", "type": "server", "status": "online"}
        assert http.post("/api/v1/devices", json=device).status_code == 201
        server.wait_until(lambda: status().get("known_devices") == 1, "device.created handled")
        assert http.delete("/api/v1/devices/device-1").status_code in (200, 204)
        server.wait_until(lambda: status().get("deleted") == ["deleted:device-1"], "deleted")

        [alert] = http.get("/api/v1/alerts", params={"device_id": "device-1"}).json()["items"]
        assert (alert["title"], alert["severity"]) == ("Device Web 1 was deleted", "info")
        assert alert["device_id"] == "device-1"  # kept as given, though the device is gone

        assert http.post(f"/api/v1/plugins/{PLUGIN_ID}/disable").status_code == 200
        assert http.post(f"/api/v1/plugins/{PLUGIN_ID}/enable").status_code == 200
        again = server.wait_until(status, "the plugin's routes again")
        assert (again["startups"], again["shutdowns"]) == (2, 1)
    assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output
