"""``serve`` and ``dev`` run docs/plugin.md's one-file plugin: a folder with only main.py."""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev_server import DevServer
from ops_center_sdk.cli.main import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"

pytestmark = pytest.mark.slow


def one_file_example() -> str:
    """The first python block of docs/plugin.md's "Use" section, as written."""
    section = DOCS.read_text(encoding="utf-8").split("\n## Use\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    plugin = tmp_path / "my-plugin"
    plugin.mkdir()
    (plugin / "main.py").write_text(one_file_example(), encoding="utf-8")
    return plugin


@pytest.fixture
def servers() -> Iterator[list[DevServer]]:
    started: list[DevServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop()


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "OPS_CENTER_DATA_DIR": str(tmp_path / "data")}
    env["OPS_CENTER_API_KEY"] = "one-file-admin-key"
    env.pop("OPS_CENTER_STORAGE_URL", None)
    return env


def test_serve_dot_runs_the_one_file_example_with_a_note(
    folder: Path, tmp_path: Path, servers: list[DevServer]
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "ops_center_sdk", "serve", ".", "--port", str(port)]
    server = DevServer(command, env_for(tmp_path), folder)
    servers.append(server)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5, trust_env=False) as http:
        status = server.wait_until(
            lambda: http.get("/plugins/my-plugin/status").status_code == 200, "the route"
        )
        assert status
        assert http.get("/plugins/my-plugin/status").json() == {
            "status": "running",
            "version": "1.0.0",
            "devices": 0,
        }
        assert http.get("/health").json()["plugin"] == "my-plugin"
    assert server.stop() == 0, server.output
    assert "has no plugin.yaml" in server.output
    assert "ops-center-plugin init` writes a full plugin.yaml" in server.output


def test_dev_runs_the_one_file_example_in_the_host(
    folder: Path, tmp_path: Path, servers: list[DevServer]
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(folder), "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "dev-data")]
    server = DevServer(command, env_for(tmp_path), tmp_path)
    servers.append(server)
    headers = {"Authorization": "Bearer one-file-admin-key"}
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, headers=headers, timeout=5, trust_env=False) as http:
        server.wait_until(
            lambda: http.get("/plugins/my-plugin/status").status_code == 200, "the route"
        )
        device = {"id": "device-1", "name": "Web 1"}
        assert http.post("/api/v1/devices", json=device).status_code == 201
        server.wait_until(
            lambda: http.get("/plugins/my-plugin/status").json()["devices"] == 1, "the hook"
        )
        described = http.get("/api/v1/plugins/my-plugin").json()
        assert (described["name"], described["version"]) == ("My Plugin", "1.0.0")
    assert server.stop() == 0, server.output
    assert "has no plugin.yaml" in server.output


def test_dev_process_refuses_a_folder_without_plugin_yaml_saying_why(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev", str(folder), "--process", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "no plugin.yaml" in err
    assert "--process needs one" in err
