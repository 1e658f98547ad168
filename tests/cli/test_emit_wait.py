"""`emit --wait`: back once every subscribed plugin handled the event, in process or not."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from dev_server import DevServer
from ops_center_sdk.cli.main import main

KEY = "dev-key"
PLUGIN = "waiter"
MANIFEST = """\
id: waiter
name: Waiter
version: 1.0.0
description: Counts metrics events; fails or dawdles when asked to.
permissions: []
hooks:
  - event: device.metrics_updated
    handler: on_metrics
routes:
  - path: /seen
    methods: [GET]
    handler: seen
"""
MAIN = """\
import asyncio

from ops_center_sdk import Plugin

plugin = Plugin(id="waiter", name="Waiter", version="1.0.0")


@plugin.hook("device.metrics_updated")
async def on_metrics(device_id: str, metrics: dict) -> None:
    if metrics.get("fail"):
        raise ValueError(f"cannot handle {device_id}")
    if metrics.get("slow"):
        await asyncio.sleep(metrics["slow"])
    await plugin.storage.set("seen", await plugin.storage.get("seen", 0) + 1)


@plugin.route("/seen", methods=["GET"])
async def seen() -> dict:
    return {"seen": await plugin.storage.get("seen", 0)}


app = plugin.create_app()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dev_host(tmp_path: Path, *extra: str) -> Iterator[tuple[DevServer, str]]:
    plugin = tmp_path / PLUGIN
    plugin.mkdir()
    (plugin / "plugin.yaml").write_text(MANIFEST)
    (plugin / "main.py").write_text(MAIN)
    (plugin / "README.md").write_text("# Waiter\n")
    port = free_port()
    env = {**os.environ, "OPS_CENTER_API_KEY": KEY}
    env.pop("OPS_CENTER_STORAGE_URL", None)
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(plugin), "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "data"), *extra]
    dev = DevServer(command, env, tmp_path)
    try:
        yield dev, f"http://127.0.0.1:{port}"
    finally:
        if dev.process.poll() is None:
            assert dev.stop() == 0, dev.output


def emit(base: str, data: dict[str, object], *options: str) -> int:
    payload = json.dumps({"device_id": "web-1", "metrics": data})
    command = ["emit", "device.metrics_updated", "--url", base, "--key", KEY, "--data", payload]
    return main([*command, *options])


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--process"]], ids=["in_process", "process"])
def test_emit_wait_returns_once_handled_and_says_which_handler_failed(
    tmp_path: Path, mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        dev_host(tmp_path, *mode) as (dev, base),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        dev.wait_until(lambda: http.get(f"/plugins/{PLUGIN}/seen").status_code == 200, "the plugin")
        capsys.readouterr()

        assert emit(base, {"cpu_usage": 1}, "--wait") == 0
        # Handled when emit returns: no polling needed.
        assert http.get(f"/plugins/{PLUGIN}/seen").json() == {"seen": 1}
        assert "handled by waiter (1 handler)" in capsys.readouterr().out

        assert emit(base, {"fail": True}, "--wait") == 1
        err = capsys.readouterr().err
        assert "waiter: on_metrics failed on device.metrics_updated: " in err
        assert "ValueError: cannot handle web-1" in err

        assert emit(base, {"slow": 3}, "--wait", "--timeout", "0.3") == 3
        err = capsys.readouterr().err
        assert "not every plugin had handled device.metrics_updated" in err
        assert "within 0.3 s; still waiting: waiter (" in err
        # The host goes on delivering it: the next event, waited for, comes after it.
        assert emit(base, {"cpu_usage": 2}, "--wait") == 0
        assert http.get(f"/plugins/{PLUGIN}/seen").json() == {"seen": 3}

        nobody = json.dumps({"user_id": "u1", "user_data": {"name": "Ann"}})
        assert main(["emit", "user.created", "--url", base, "--key", KEY, "--data", nobody,
                     "--wait"]) == 0  # fmt: skip
        assert "no enabled plugin subscribes to user.created" in capsys.readouterr().out

        unknown = http.get("/api/v1/events/no-such-event/deliveries")
        assert unknown.status_code == 404
        error = unknown.json()["error"]
        assert error["code"] == "not_found"
        assert "no event 'no-such-event' is tracked here" in error["message"]
        assert error["details"][0]["field"] == "path.event_id"
        assert (
            http.get(
                "/api/v1/events/x/deliveries", headers={"Authorization": "Bearer nope"}
            ).status_code
            == 401
        )


def test_emit_timeout_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(SystemExit) as exited:
            main(["emit", "device.deleted", "--wait", "--timeout", bad])
        assert exited.value.code == 2
        assert "--timeout" in capsys.readouterr().err
