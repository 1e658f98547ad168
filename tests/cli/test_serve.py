"""`ops-center-plugin serve`: the example plugin as its own app under uvicorn, for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ops_center_sdk.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "device_anomaly_detector"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_example_and_remembers_installation(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OPS_CENTER_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "ops_center_sdk", "serve", str(EXAMPLE), "--port", str(port)]
    base = f"http://127.0.0.1:{port}/plugins/device-anomaly-detector"
    for run in range(2):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            status = wait_for(base + "/status", process)
            assert status["status"] == "running"
            assert status["version"] == "1.0.0"
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output
        assert ("Installing Device Anomaly Detector" in output) == (run == 0)
        assert "Starting anomaly detection" in output
        assert "Stopping anomaly detection" in output
    assert (tmp_path / "data" / "plugins" / "device-anomaly-detector" / "storage.db").is_file()


def wait_for(url: str, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer")


def test_serve_reports_a_broken_plugin_folder(tmp_path: Path, capsys: object) -> None:
    (tmp_path / "plugin.yaml").write_text("id: Bad Id\nname: x\nversion: 1.0.0\n")
    assert main(["serve", str(tmp_path)]) == 1


def test_help_lists_commands_with_examples(capsys: object) -> None:
    import pytest

    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0


def test_serve_fails_the_start_when_a_startup_handler_fails(tmp_path: Path) -> None:
    folder = tmp_path / "bad-startup"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("id: bad-startup\nname: Bad\nversion: 1.0.0\n")
    (folder / "main.py").write_text(
        "from ops_center_sdk import Plugin\n\n"
        'plugin = Plugin(id="bad-startup", version="1.0.0")\n'
        "app = plugin.create_app()\n\n\n"
        '@app.on_event("startup")\n'
        "async def connect():\n"
        '    raise ConnectionError("broker down")\n'
    )
    env = {**os.environ, "OPS_CENTER_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "ops_center_sdk", "serve", str(folder), "--port", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" in output
    assert f'{folder / "main.py"}", line 9, in connect' in output
    assert "ConnectionError: broker down" in output
