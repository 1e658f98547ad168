"""`ops-center-plugin dev` and `serve`, run for real, stop when asked despite hung sync hooks."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from plugin_kit import write_plugin

from dev_server import DevServer
from ops_center_sdk.host.plugin_host import SHUTDOWN_DRAIN_SECONDS

KEY = "dev-key"

#: A sync hook that never returns: each call times out, its thread hangs on.
HUNG = """
import threading

from ops_center_sdk import Plugin

plugin = Plugin(id="hung", version="1.0.0")


@plugin.hook("device.created", timeout=0.2)
def hangs(device_id):
    plugin.logger.info(f"hanging on {device_id}")
    threading.Event().wait()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_dev_stops_within_its_grace_period_despite_hung_sync_hooks(
    tmp_path: Path, stop: signal.Signals
) -> None:
    plugin = write_plugin(tmp_path / "hung", "hung", HUNG)
    port = free_port()
    env = {**os.environ, "OPS_CENTER_API_KEY": KEY}
    env.pop("OPS_CENTER_STORAGE_URL", None)
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(plugin), "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "data")]
    dev = DevServer(command, env, tmp_path)
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    )
    try:
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host")
        for number in range(8):
            created = http.post("/api/v1/devices", json={"id": f"d{number}", "name": "d"})
            assert created.status_code == 201

        def all_timed_out() -> bool:
            (hook,) = http.get("/api/v1/plugins/hung/health").json()["hooks"]
            return bool(hook["timeouts"] == 8)

        dev.wait_until(all_timed_out, "every call of the hook to time out")

        started = time.monotonic()
        dev.process.send_signal(stop)
        code = dev.process.wait(timeout=SHUTDOWN_DRAIN_SECONDS + 10)
        took = time.monotonic() - started
    finally:
        http.close()
        if dev.process.poll() is None:
            dev.process.kill()  # only reached when the test failed
            dev.process.wait()
    # uvicorn ends by re-raising the SIGTERM it handled, after a complete shutdown.
    assert code in (0, -signal.SIGTERM), dev.output
    assert "Application shutdown complete" in dev.output
    assert took < SHUTDOWN_DRAIN_SECONDS + 5, dev.output


#: The same hook in a plugin served on its own, fired through a route.
HUNG_ALONE = """
import threading

from ops_center_sdk import Plugin

plugin = Plugin(id="hung", version="1.0.0")


@plugin.hook("hung.go", timeout=0.2)
def hangs():
    threading.Event().wait()


@plugin.route("/go", methods=["POST"])
async def go():
    report = await plugin.emit("hung.go")
    return {"timed_out": [failure.timed_out for failure in report.failures]}
"""


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_despite_hung_sync_hooks(tmp_path: Path, stop: signal.Signals) -> None:
    plugin = write_plugin(tmp_path / "hung", "hung", HUNG_ALONE)
    port = free_port()
    env = {**os.environ, "OPS_CENTER_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "ops_center_sdk", "serve", str(plugin), "--port", str(port)]
    server = DevServer(command, env, tmp_path)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        server.wait_until(lambda: "Application startup complete" in server.output, "the app")
        for _ in range(6):  # more than the plugin has threads
            assert http.post("/plugins/hung/go").json() == {"timed_out": [True]}
        started = time.monotonic()
        server.process.send_signal(stop)
        code = server.process.wait(timeout=20)
        took = time.monotonic() - started
    finally:
        http.close()
        if server.process.poll() is None:
            server.process.kill()  # only reached when the test failed
            server.process.wait()
    assert code in (0, -signal.SIGTERM), server.output
    assert took < 5, server.output
