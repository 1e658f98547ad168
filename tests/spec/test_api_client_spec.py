"""The spec's "API Client" code block, read from the spec at test time, against a real `dev`.

The block is taken from ``sdk-readme.md`` (a verbatim copy of the public
README), wrapped in an ``async def`` taking ``plugin`` and run as written;
``plugin.api`` calls a real ``ops-center-plugin dev`` over loopback HTTP.

The block ends by registering a webhook for https://example.com/webhook
(``device.created``, ``alert.created``), after events of both kinds have
happened. The host delivers to a webhook only the events that occurred
after it was registered, so nothing is sent; and to be sure nothing leaves
this machine even if it were, ``dev`` runs with its HTTP(S) proxy pointed at
a loopback socket that nothing should ever connect to (loopback itself is
exempt through NO_PROXY).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev_server import DevServer
from ops_center_sdk import Plugin

SPEC = Path(__file__).with_name("sdk-readme.md")
ADMIN_KEY = "spec-admin-key"
PERMISSIONS = [
    "devices:read",
    "devices:write",
    "users:read",
    "organizations:read",
    "alerts:read",
    "alerts:write",
    "webhooks:read",
    "webhooks:write",
]

pytestmark = pytest.mark.slow


def spec_code_block(heading: str) -> str:
    """The first ```python block under ``heading`` in the spec, exactly as written."""
    text = SPEC.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)
    assert len(section) == 2, f"no {heading!r} section in {SPEC}"
    found = re.search(r"```python\n(.*?)```", section[1], re.DOTALL)
    assert found is not None, f"no python block under {heading!r} in {SPEC}"
    return found.group(1)


def as_async_function(code: str, name: str) -> Any:
    """``code`` as the body of ``async def name(plugin)``, returning its local variables."""
    source = f"async def {name}(plugin):\n{textwrap.indent(code, '    ')}\n    return locals()\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"{SPEC.name}: {name}", "exec"), namespace)
    return namespace[name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxy_trap() -> Iterator[socket.socket]:
    """A listening loopback socket never accepted from: any connection stays queued."""
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(16)
    trap.setblocking(False)
    yield trap
    trap.close()


def connections_to(trap: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = trap.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def quiet_plugin(folder: Path) -> Path:
    """A plugin subscribed to nothing: the only deliveries left are the webhook's."""
    folder.mkdir()
    (folder / "plugin.yaml").write_text(
        "id: quiet-plugin\nname: Quiet Plugin\nversion: 1.0.0\n", encoding="utf-8"
    )
    main = (
        'from ops_center_sdk import Plugin\n\nplugin = Plugin(id="quiet-plugin", version="1.0.0")\n'
    )
    (folder / "main.py").write_text(main, encoding="utf-8")
    return folder


@pytest.fixture
def dev(tmp_path: Path, proxy_trap: socket.socket) -> Iterator[tuple[DevServer, str]]:
    """A running ``ops-center-plugin dev`` and its URL; stopped by its PID if still running."""
    trap = f"http://127.0.0.1:{proxy_trap.getsockname()[1]}"
    env = {**os.environ, "OPS_CENTER_API_KEY": ADMIN_KEY, "NO_PROXY": "127.0.0.1,localhost"}
    env.update(HTTP_PROXY=trap, HTTPS_PROXY=trap, ALL_PROXY=trap)
    env.pop("OPS_CENTER_STORAGE_URL", None)
    port = free_port()
    command = [sys.executable, "-m", "ops_center_sdk", "dev", str(quiet_plugin(tmp_path / "quiet"))]
    command += ["--port", str(port), "--data-dir", str(tmp_path / "data")]
    server = DevServer(command, env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            server.wait_until(lambda: http.get("/api/v1/health").status_code == 200, "dev")
        yield server, url
    finally:
        if server.process.poll() is None:
            server.stop()


def seed(http: httpx.Client) -> None:
    """The records the block gets by id, made with the admin key first."""
    for path, body in (
        ("/organizations", {"id": "org-789", "name": "Acme"}),
        ("/users", {"id": "user-456", "email": "ann@example.com", "organization_id": "org-789"}),
        ("/devices", {"id": "device-123", "name": "Web 1", "type": "server", "status": "online"}),
        ("/devices", {"id": "device-9", "name": "Spare", "status": "offline"}),
        ("/alerts", {"id": "alert-123", "title": "Disk full", "severity": "critical"}),
        ("/alerts", {"id": "alert-9", "title": "Fan", "severity": "warning"}),
    ):
        response = http.post(path, json=body)
        assert response.status_code == 201, response.text


def test_the_block_is_the_specs_api_client_section() -> None:
    block = spec_code_block("### API Client")
    for call in ("devices.delete", "users.get", "organizations.get", "alerts.acknowledge"):
        assert f"plugin.api.{call}(" in block
    assert block.rstrip().endswith("})")  # up to the webhook registration, whole


async def test_the_specs_api_client_block_runs_as_written_against_dev(
    dev: tuple[DevServer, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proxy_trap: socket.socket,
) -> None:
    server, url = dev
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=5) as http:
        seed(http)
    monkeypatch.setenv("OPS_CENTER_API_URL", url)
    monkeypatch.setenv("OPS_CENTER_API_KEY", ADMIN_KEY)
    plugin = Plugin(id="spec-client", version="1.0.0", permissions=PERMISSIONS, root=tmp_path)
    example = as_async_function(spec_code_block("### API Client"), "api_client_example")
    try:
        seen = await example(plugin)
    finally:
        await plugin.close()

    # what the block read, as the host had it then
    assert [d["id"] for d in seen["devices"]] == ["device-123"]
    assert (seen["device"]["id"], seen["device"]["status"]) == ("device-123", "online")
    assert [u["id"] for u in seen["users"]] == ["user-456"]
    assert seen["user"]["email"] == "ann@example.com"
    assert [o["id"] for o in seen["orgs"]] == ["org-789"]
    assert seen["org"]["name"] == "Acme"
    assert [a["id"] for a in seen["alerts"]] == ["alert-123"]
    assert seen["webhooks"] == []

    # what it changed
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=5) as http:
        assert http.get("/devices/device-123").status_code == 404
        [new] = http.get("/devices", params={"q": "New Device"}).json()["items"]
        assert (new["name"], new["type"]) == ("New Device", "server")
        [raised] = http.get("/alerts", params={"device_id": "device-123"}).json()["items"]
        assert (raised["title"], raised["severity"], raised["status"]) == (
            "High CPU Usage",
            "warning",
            "active",
        )
        assert raised["message"] == "CPU usage is above 90%"
        assert http.get("/alerts/alert-123").json()["status"] == "acknowledged"
        [webhook] = http.get("/webhooks").json()["items"]
        assert webhook["url"] == "https://example.com/webhook"
        assert webhook["events"] == ["device.created", "alert.created"]
        log = http.get(f"/webhooks/{webhook['id']}/deliveries").json()
        assert log["total"] == 0  # both events happened before the webhook existed

    # Stopping delivers whatever is still queued: still nothing may go out.
    assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output
    assert connections_to(proxy_trap) == 0
