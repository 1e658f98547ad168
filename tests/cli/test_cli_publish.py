"""`ops-center-plugin publish` to a real local Ops-Center (uvicorn on 127.0.0.1, own process)."""

from __future__ import annotations

import gzip
import io
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops_center_sdk.cli.main import main
from ops_center_sdk.cli.publish import is_loopback
from ops_center_sdk.packaging import build_package, sha256_of
from ops_center_sdk.scaffold import PluginAnswers, create_plugin

pytestmark = pytest.mark.slow

KEY = "publish-test-admin-key"
SERVER = """
import sys
from pathlib import Path

import uvicorn

from ops_center_sdk.host import create_host_app

app = create_host_app(data_dir=Path(sys.argv[1]), admin_key=sys.argv[2])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local Ops-Center's host app served by uvicorn in its own process."""
    data_dir = tmp_path_factory.mktemp("ops-center-data")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data_dir), KEY, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPS_CENTER_API_URL", raising=False)
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)  # no saved dev key from the working folder


def new_plugin(tmp_path: Path, plugin_id: str, version: str = "1.0.0") -> Path:
    folder = tmp_path / plugin_id
    create_plugin(folder, PluginAnswers(plugin_id, description=f"{plugin_id} for tests"))
    if version != "1.0.0":
        set_version(folder, version)
    return folder


def set_version(folder: Path, version: str) -> None:
    for name in ("plugin.yaml", "main.py"):
        path = folder / name
        text = path.read_text()
        text = text.replace("version: 1.0.0", f"version: {version}")
        text = text.replace('version="1.0.0"', f'version="{version}"')
        path.write_text(text)


def listing(url: str, plugin_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{url}/api/v1/marketplace/plugins/{plugin_id}",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_publish_builds_uploads_and_the_marketplace_lists_it(
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = new_plugin(tmp_path, "listed-plugin")
    monkeypatch.setenv("OPS_CENTER_API_URL", server)
    monkeypatch.setenv("OPS_CENTER_API_KEY", KEY)

    assert main(["publish", str(folder)]) == 0

    captured = capsys.readouterr()
    package = folder / "dist" / "listed-plugin-1.0.0.tar.gz"
    assert package.is_file()
    assert "building listed-plugin-1.0.0.tar.gz" in captured.err
    assert "published listed-plugin 1.0.0" in captured.out
    assert f"{server}/api/v1/marketplace/plugins/listed-plugin" in captured.out
    listed = listing(server, "listed-plugin")
    assert listed["versions"] == ["1.0.0"]
    assert listed["description"] == "listed-plugin for tests"
    index = httpx.get(
        f"{server}/api/v1/marketplace/plugins",
        params={"q": "listed"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    assert [item["id"] for item in index["items"]] == ["listed-plugin"]
    download = httpx.get(
        f"{server}/api/v1/marketplace/plugins/listed-plugin/versions/1.0.0/download",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert download.content == package.read_bytes()


def test_the_same_version_again_is_a_clear_409(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "twice-plugin")
    assert main(["publish", str(folder), "--url", server, "--key", KEY]) == 0
    capsys.readouterr()

    assert main(["publish", str(folder), "--url", server, "--key", KEY]) == 1

    err = capsys.readouterr().err
    assert "twice-plugin 1.0.0 is already published" in err
    assert "(409)" in err
    assert "raise `version` in plugin.yaml" in err
    assert listing(server, "twice-plugin")["versions"] == ["1.0.0"]


def test_a_new_version_and_a_package_older_than_its_sources(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "growing-plugin")
    assert main(["publish", str(folder), "--url", server, "--key", KEY, "--json"]) == 0
    capsys.readouterr()
    set_version(folder, "1.1.0")
    old = build_package(folder)
    os.utime(old.path, (1_000_000, 1_000_000))  # built long before the edit below
    (folder / "README.md").write_text("# Growing Plugin\n\nNow with more.\n")

    assert main(["publish", str(folder), "--url", server, "--key", KEY]) == 0

    err = capsys.readouterr().err
    assert "README.md changed after growing-plugin-1.1.0.tar.gz was built" in err
    assert listing(server, "growing-plugin")["versions"] == ["1.0.0", "1.1.0"]
    published = httpx.get(
        f"{server}/api/v1/marketplace/plugins/growing-plugin/versions/1.1.0",
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    assert published["sha256"] == sha256_of(folder / "dist" / "growing-plugin-1.1.0.tar.gz")
    assert published["sha256"] != old.sha256


def test_a_package_changed_after_its_build_is_not_uploaded(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "tampered-plugin")
    built = build_package(folder)
    built.path.write_bytes(built.path.read_bytes() + b"\0")

    assert main(["publish", str(folder), "--url", server, "--key", KEY]) == 1

    assert "does not match tampered-plugin-1.0.0.tar.gz.sha256" in capsys.readouterr().err
    response = httpx.get(
        f"{server}/api/v1/marketplace/plugins/tampered-plugin",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 404


def test_a_checksum_that_does_not_match_is_refused_by_the_server(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_package(new_plugin(tmp_path, "mismatch-plugin"), tmp_path / "out")
    built.checksum_path.write_text(f"{'0' * 64}  {built.path.name}\n")

    assert main(["publish", str(built.path), "--url", server, "--key", KEY]) == 1

    err = capsys.readouterr().err
    assert "(422)" in err
    assert "checksum mismatch" in err


def test_a_malicious_archive_is_refused(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (
            ("evil-plugin-1.0.0/plugin.yaml", b"id: evil-plugin\nname: Evil\nversion: 1.0.0\n"),
            ("evil-plugin-1.0.0/../../escaped.txt", b"owned"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    package = tmp_path / "evil-plugin-1.0.0.tar.gz"
    package.write_bytes(gzip.compress(raw.getvalue()))

    assert main(["publish", str(package), "--url", server, "--key", KEY]) == 1

    err = capsys.readouterr().err
    assert "(422)" in err
    assert "climbs out of the package" in err


def test_a_wrong_key_is_a_clear_error(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "keyless-plugin")
    assert main(["publish", str(folder), "--url", server, "--key", "not-the-key"]) == 1
    assert "refused the API key (401)" in capsys.readouterr().err


def test_missing_url_or_key_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "lonely-plugin")

    assert main(["publish", str(folder), "--key", KEY]) == 2
    assert "OPS_CENTER_API_URL" in capsys.readouterr().err
    assert main(["publish", str(folder), "--url", "https://ops.example.com"]) == 2
    assert "OPS_CENTER_API_KEY" in capsys.readouterr().err
    assert not (folder / "dist").exists()


def test_an_unreachable_url_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "offline-plugin")
    url = f"http://127.0.0.1:{free_port()}"

    assert main(["publish", str(folder), "--url", url, "--key", KEY, "--timeout", "5"]) == 1

    assert f"cannot reach {url}" in capsys.readouterr().err


def test_plain_http_is_refused_except_to_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = new_plugin(tmp_path, "careful-plugin")

    assert main(["publish", str(folder), "--url", "http://ops.example.com", "--key", KEY]) == 2

    assert "refusing to send the API key over plain http" in capsys.readouterr().err
    assert not (folder / "dist").exists()
    for host in ("127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    # app.localhost is resolved through DNS on some machines: not trusted as this machine
    for host in (
        "10.0.0.1",
        "192.168.1.2",
        "ops.example.com",
        "127.0.0.1.example.com",
        "::2",
        "app.localhost",
    ):
        assert not is_loopback(host), host
