"""`ops-center-plugin dev` and `emit`: the example plugin in a real dev host under uvicorn."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev_server import DevServer
from ops_center_sdk.cli.admin_key import admin_key
from ops_center_sdk.cli.dev import DevSession
from ops_center_sdk.cli.main import main
from ops_center_sdk.host.server import create_server_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "device_anomaly_detector"
PLUGIN = "device-anomaly-detector"
KEY = "dev-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dev_host(plugin: Path, data: Path, port: int) -> Iterator[DevServer]:
    env = {**os.environ, "OPS_CENTER_API_KEY": KEY}
    env.pop("OPS_CENTER_STORAGE_URL", None)
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(plugin)]
    command += ["--port", str(port), "--data-dir", str(data)]
    dev = DevServer(command, env, plugin.parent)
    try:
        yield dev
    finally:
        if dev.process.poll() is None:
            code = dev.stop()
            assert code == 0, dev.output


def get(http: httpx.Client, path: str) -> Any:
    response = http.get(path)
    response.raise_for_status()
    return response.json()


@pytest.mark.slow
def test_dev_runs_the_example_reloads_on_save_and_keeps_data(tmp_path: Path) -> None:
    plugin = tmp_path / "detector"
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    main_py = plugin / "main.py"
    good = main_py.read_text()
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)

    with dev_host(plugin, data, port) as dev:
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host")
        assert f"Plugin      {PLUGIN} 1.0.0 (enabled)" in dev.output
        assert f"GET    {base}/plugins/{PLUGIN}/status" in dev.output
        assert f"API docs    {base}/docs" in dev.output

        created = http.post("/api/v1/devices", json={"id": "web-1", "name": "Web server"})
        assert created.status_code == 201
        for value in (41, 43, 40, 42, 44, 41, 43, 42, 40, 42, 43, 41):
            assert http.post("/api/v1/devices/web-1/metrics", json={"cpu_usage": value}).is_success
        http.post("/api/v1/devices/web-1/metrics", json={"cpu_usage": 99})
        dev.wait_until(lambda: get(http, "/api/v1/alerts")["total"] == 1, "the alert")
        alert = get(http, "/api/v1/alerts")["items"][0]
        assert (alert["device_id"], alert["severity"]) == ("web-1", "critical")
        status = get(http, f"/plugins/{PLUGIN}/status")
        assert (status["devices_tracked"], status["anomalies_detected"]) == (1, 1)

        payload = json.dumps({"device_id": "web-1", "metrics": {"cpu_usage": 100}})
        emitted = main(
            ["emit", "device.metrics_updated", "--url", base, "--key", KEY, "--data", payload]
        )
        assert emitted == 0
        dev.wait_until(lambda: get(http, "/api/v1/alerts")["total"] == 2, "the emitted spike")

        # A save that does not import: reported with file and line, the old code keeps serving.
        broken_line = len(good.splitlines()) + 2
        main_py.write_text(good + "\nraise RuntimeError('half written')\n")
        dev.wait_until(lambda: f"main.py:{broken_line}" in dev.output, "the reload error")
        assert "RuntimeError: half written" in dev.output
        assert get(http, f"/plugins/{PLUGIN}/status")["status"] == "running"

        # The next good save comes in, on the same storage.
        main_py.write_text(good.replace('"status": "running",', '"status": "reloaded",'))
        # (While the plugin is swapped its routes answer 503 for a moment.)
        dev.wait_until(
            lambda: http.get(f"/plugins/{PLUGIN}/status").json().get("status") == "reloaded",
            "the reload",
        )
        assert get(http, f"/plugins/{PLUGIN}/status")["anomalies_detected"] == 2
        assert dev.stop() == 0
    assert "Stopping anomaly detection" in dev.output

    with dev_host(plugin, data, port) as dev:  # restarted: everything is still there
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host again")
        status = get(http, f"/plugins/{PLUGIN}/status")
        assert (status["devices_tracked"], status["anomalies_detected"]) == (1, 2)
        assert get(http, "/api/v1/alerts")["total"] == 2
        assert get(http, "/api/v1/devices/web-1")["last_metrics"] == {"cpu_usage": 99}
        assert "Installing Device Anomaly Detector" not in dev.output  # installed once only
    http.close()


async def test_dev_session_recovers_from_a_plugin_broken_at_start(tmp_path: Path) -> None:
    plugin = tmp_path / "detector"
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    manifest = plugin / "plugin.yaml"
    good = manifest.read_text()
    manifest.write_text(good.replace("- alerts:write", "- alerts:wrte"))
    data = tmp_path / "data"
    app = create_server_app(data_dir=data, admin_key=KEY)
    out = io.StringIO()
    session = DevSession(
        app.state.plugins,
        plugin,
        data_dir=data,
        base_url="http://127.0.0.1:1",
        key=admin_key(data),
        out=out,
    )
    async with app.router.lifespan_context(app):
        assert await session.install() is None
        line = good.splitlines().index("  - alerts:write") + 1
        assert f"{manifest}:{line}" in out.getvalue()
        assert "alerts:wrte" in out.getvalue()
        manifest.write_text(good)
        entry = await session.reload(["plugin.yaml"])
        assert entry is not None
        assert entry.enabled
        assert "reloaded device-anomaly-detector 1.0.0 (enabled)" in out.getvalue()
        session.print_urls()
        assert f"/plugins/{PLUGIN}/anomalies" in out.getvalue()


def test_admin_key_is_generated_once_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)
    monkeypatch.setenv("OPS_CENTER_CONFIG_DIR", str(tmp_path / "config"))
    first = admin_key(tmp_path / "data")
    assert first.origin == "generated"
    assert first.path is not None
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.path.parent.stat().st_mode) == 0o700
    # Never in the data folder, where plugin processes keep theirs.
    assert first.path.is_relative_to(tmp_path / "config")
    assert not any(
        first.value in p.read_text() for p in (tmp_path / "data").rglob("*") if p.is_file()
    )
    again = admin_key(tmp_path / "data")
    assert (again.value, again.origin) == (first.value, "saved")
    assert admin_key(tmp_path / "other").value != first.value  # one key per data folder
    monkeypatch.setenv("OPS_CENTER_API_KEY", "from-env")
    assert admin_key(tmp_path / "data").value == "from-env"


def test_a_key_saved_in_clear_in_the_data_folder_moves_out_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)
    monkeypatch.setenv("OPS_CENTER_CONFIG_DIR", str(tmp_path / "config"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-key").write_text("ocadmin_old\n")
    moved = admin_key(data)
    assert (moved.value, moved.origin) == ("ocadmin_old", "saved")
    assert not (data / "admin-key").exists()


def test_emit_reports_bad_json_missing_key_and_unreachable_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)
    monkeypatch.delenv("OPS_CENTER_API_URL", raising=False)
    assert main(["emit", "device.deleted", "--key", "k", "--data", "{device_id: 1}"]) == 2
    assert "--data is not valid JSON" in capsys.readouterr().err
    assert main(["emit", "device.deleted", "--key", "k", "--data", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["emit", "device.deleted", "--data", '{"device_id": "d"}']) == 2
    assert "no admin key" in capsys.readouterr().err
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["emit", "device.deleted", "--url", url, "--key", "k"]) == 1
    assert f"cannot reach Ops-Center at {url}" in capsys.readouterr().err


def test_emit_never_sends_the_admin_key_in_clear_text_or_the_saved_key_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)
    monkeypatch.setenv("OPS_CENTER_API_URL", "http://10.255.255.1:9")
    data = '{"device_id": "d"}'
    # Refused before any connection: a send would fail with 1 (unreachable), not 2.
    assert main(["emit", "device.deleted", "--key", "k", "--data", data]) == 2
    assert "refusing to send the admin key over plain http to 10.255.255.1" in (
        capsys.readouterr().err
    )
    assert main(["emit", "device.deleted", "--url", "ftp://x", "--key", "k", "--data", data]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
    admin_key(tmp_path / ".ops-center" / "data")  # the key dev saves, for this machine only
    url = "https://ops.example.invalid"
    assert main(["emit", "device.deleted", "--url", url, "--data", data]) == 2
    assert "no admin key" in capsys.readouterr().err


def test_emit_reports_a_host_that_does_not_answer_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import http.server

    class NotOpsCenter(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotOpsCenter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["emit", "device.deleted", "--url", url, "--key", "k"]) == 1
        assert "without JSON" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_dev_and_serve_on_a_busy_port_exit_1_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        data = tmp_path / "data"
        assert main(["dev", str(EXAMPLE), "--port", port, "--data-dir", str(data)]) == 1
        err = capsys.readouterr().err
        assert f"cannot listen on 127.0.0.1:{port}: it is in use" in err
        assert "--port 0" in err
        assert not data.exists()  # no key made, nothing installed
        assert main(["serve", str(EXAMPLE), "--port", port]) == 1
        assert f"cannot listen on 127.0.0.1:{port}: it is in use" in capsys.readouterr().err


def test_dev_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "data")]) == 1
    assert "no such plugin folder" in capsys.readouterr().err


def copy_example(tmp_path: Path) -> Path:
    plugin = tmp_path / "detector"
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return plugin


def admin_http(port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    )


@pytest.mark.slow
def test_dev_shows_a_config_yaml_refused_on_reload_in_the_api_until_it_is_fixed(
    tmp_path: Path,
) -> None:
    plugin = copy_example(tmp_path)
    config = plugin / "config.yaml"
    good = config.read_text()
    port = free_port()
    with dev_host(plugin, tmp_path / "data", port) as dev, admin_http(port) as http:
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host")
        config.write_text(good.replace("threshold: 3.0", "threshold: 99"))

        def refused() -> dict[str, Any] | None:
            error = get(http, f"/api/v1/plugins/{PLUGIN}")["error"]
            return error if error and error["code"] == "invalid_config" else None

        error = dev.wait_until(refused, "the config error in the API")
        assert error["phase"] == "reload"
        assert "threshold: must be <= 10 (maximum), got 99" in error["message"]
        assert get(http, f"/api/v1/plugins/{PLUGIN}/health")["last_error"] == error
        assert get(http, f"/api/v1/plugins/{PLUGIN}")["status"] == "enabled"  # the old one serves
        assert "reload failed (still serving the previous version)" in dev.output

        config.write_text(good)
        dev.wait_until(
            lambda: get(http, f"/api/v1/plugins/{PLUGIN}")["error"] is None, "the error cleared"
        )
        assert get(http, f"/api/v1/plugins/{PLUGIN}/health")["last_error"] is None


async def test_dev_runs_validate_on_every_load_prints_and_shows_findings(tmp_path: Path) -> None:
    plugin = copy_example(tmp_path)
    manifest = plugin / "plugin.yaml"
    good = manifest.read_text()
    manifest.write_text(good.replace("handler: on_device_deleted", "handler: on_device_gone"))
    data = tmp_path / "data"
    app = create_server_app(data_dir=data, admin_key=KEY)
    out = io.StringIO()
    session = DevSession(
        app.state.plugins, plugin, data_dir=data, base_url="http://t", key=admin_key(data), out=out
    )
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http,
    ):
        entry = await session.install()
        assert entry is not None
        assert entry.enabled  # validate's errors do not stop code that imports
        printed = out.getvalue()
        assert "validate: 1 error, 1 warning (it runs here, but `ops-center-plugin validate`" in (
            printed
        )
        line = good.splitlines().index("    handler: on_device_deleted") + 1
        assert f"error: plugin.yaml:{line}: hooks[1] names the handler 'on_device_gone'" in printed
        assert "warning: main.py:" in printed

        described = (await http.get(f"/api/v1/plugins/{PLUGIN}")).json()
        validation = described["validation"]
        assert (validation["valid"], validation["errors"], validation["warnings"]) == (False, 1, 1)
        error = validation["findings"][0]
        assert (error["severity"], error["file"], error["line"]) == ("error", "plugin.yaml", line)
        health = (await http.get(f"/api/v1/plugins/{PLUGIN}/health")).json()
        assert health["validation"] == validation

        out.truncate(0)
        manifest.write_text(good)
        assert await session.reload(["plugin.yaml"]) is not None
        assert "validate:" not in out.getvalue()  # nothing found, nothing printed
        validation = (await http.get(f"/api/v1/plugins/{PLUGIN}")).json()["validation"]
        assert (validation["valid"], validation["findings"]) == (True, [])


@pytest.mark.slow
def test_dev_says_when_a_marketplace_install_replaces_the_watched_copy_and_takes_it_back(
    tmp_path: Path,
) -> None:
    from ops_center_sdk.packaging import build_package

    plugin = copy_example(tmp_path)
    main_py = plugin / "main.py"
    good = main_py.read_text()
    assert '"status": "running",' in good
    published = copy_example(tmp_path / "published")
    marked = good.replace('"status": "running",', '"status": "marketplace",')
    (published / "main.py").write_text(marked)
    package = build_package(published, tmp_path / "dist")
    port = free_port()
    with dev_host(plugin, tmp_path / "data", port) as dev, admin_http(port) as http:
        dev.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "the host")
        uploaded = http.post(
            "/api/v1/marketplace/plugins",
            content=package.path.read_bytes(),
            headers={"Content-Type": "application/gzip", "X-Checksum-Sha256": package.sha256},
        )
        assert uploaded.status_code == 201, uploaded.text
        market = f"/api/v1/marketplace/plugins/{PLUGIN}/versions/1.0.0/install?replace=true"
        assert http.post(market).status_code == 201

        dev.wait_until(lambda: "now runs from the marketplace package" in dev.output, "the notice")
        assert f"not from {plugin}, the folder this dev watches" in dev.output
        described = get(http, f"/api/v1/plugins/{PLUGIN}")
        assert (described["source"]["type"], described["source"]["version"]) == (
            "marketplace",
            "1.0.0",
        )
        assert get(http, f"/plugins/{PLUGIN}/status")["status"] == "marketplace"

        # A save in the watched folder installs the watched copy over the marketplace one.
        main_py.write_text(good.replace('"status": "running",', '"status": "watched",'))
        dev.wait_until(
            lambda: http.get(f"/plugins/{PLUGIN}/status").json().get("status") == "watched",
            "the watched copy back",
        )
        again = f"installed {plugin} again over the marketplace package"
        dev.wait_until(lambda: again in dev.output, "the notice of the watched copy back")
        assert "now runs from the watched folder" in dev.output
        source = get(http, f"/api/v1/plugins/{PLUGIN}")["source"]
        assert source == {"type": "folder", "path": str(plugin)}
