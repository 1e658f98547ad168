"""Helpers of the out-of-process tests: a host served on a real loopback port, test plugins.

A plugin process calls the host's API back over HTTP, so these tests serve
the host app with uvicorn on 127.0.0.1 inside the test's event loop (no
extra process for the host). Every plugin process the host starts is
recorded and killed by its PID at teardown, should one outlive its host.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from ops_center_sdk.host.outbox import RetryPolicy
from ops_center_sdk.host.plugin_host import PluginHost
from ops_center_sdk.host.process_runtime import ProcessRuntime, ProcessSettings
from ops_center_sdk.host.server import create_server_app
from ops_center_sdk.host.webhook_sender import WebhookSettings

ADMIN_KEY = "admin-test-key"
ROOT = Path(__file__).resolve().parents[2]
SPEC_PLUGIN = ROOT / "tests" / "spec" / "spec_plugin"
EXAMPLE = ROOT / "examples" / "device_anomaly_detector"

#: Short timeouts and retries; health checks run only when a test asks.
FAST = ProcessSettings(
    start_timeout=20.0,
    stop_timeout=3.0,
    lifecycle_timeout=10.0,
    delivery_timeout=5.0,
    filter_deadline=0.3,
    health_interval=3600.0,
    health_timeout=0.5,
    unhealthy_after=2,
    retry=RetryPolicy(max_attempts=3, base=0.02, maximum=0.1, jitter=0.0),
    restart_base=0.02,
    restart_max=0.5,
)
FAST_WEBHOOKS = WebhookSettings(
    timeout=2.0, retry=RetryPolicy(max_attempts=3, base=0.02, maximum=0.1, jitter=0.0)
)


class QuietServer(uvicorn.Server):
    """uvicorn inside the test's loop, leaving the test runner's signal handlers alone."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_socket(port: int = 0) -> tuple[socket.socket, str]:
    """A listening socket on 127.0.0.1 (a free port by default) and its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def served(app: Any, sock: socket.socket, *, lifespan: str = "on") -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` in this loop until the block ends (its lifespan included)."""
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False)
    server = QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during startup")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@dataclass
class ServedHost:
    """The local Ops-Center served on a loopback port, and an admin client for it."""

    app: FastAPI
    url: str
    http: httpx.AsyncClient

    @property
    def plugins(self) -> PluginHost:
        host: PluginHost = self.app.state.plugins
        return host

    def runtime(self, plugin_id: str) -> ProcessRuntime:
        runtime = self.plugins.get(plugin_id).runtime
        assert isinstance(runtime, ProcessRuntime), runtime
        return runtime

    async def install(self, folder: Path, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/api/v1/plugins", json={"path": str(folder), **body})
        assert response.status_code == 201, response.text
        described: dict[str, Any] = response.json()
        return described

    async def settle(self, seconds: float = 20.0) -> None:
        """Wait (at most ``seconds``) until every queued event is delivered or given up."""
        await asyncio.wait_for(self.plugins.drain(), seconds)

    async def get(self, path: str) -> Any:
        response = await self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def served_host(
    data_dir: Path, settings: ProcessSettings = FAST, **options: Any
) -> AsyncIterator[ServedHost]:
    """``create_server_app`` on ``data_dir``, served on 127.0.0.1 with its lifespan."""
    sock, url = loopback_socket()
    app = create_server_app(
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        public_url=url,
        process_settings=settings,
        webhook_settings=FAST_WEBHOOKS,
        **options,
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        served(app, sock),
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http,
    ):
        yield ServedHost(app, url, http)


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], what: str, *, within: float = 15.0
) -> Any:
    """Poll ``check`` until it returns something true; that value (fails after ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def copy_plugin(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return target


def write_plugin(folder: Path, plugin_id: str, main: str, manifest: str = "") -> Path:
    """A plugin folder: plugin.yaml (id, name, version + ``manifest``) and main.py."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(
        f"id: {plugin_id}\nname: {plugin_id}\nversion: 1.0.0\n" + textwrap.dedent(manifest),
        encoding="utf-8",
    )
    (folder / "main.py").write_text(textwrap.dedent(main), encoding="utf-8")
    return folder


def is_running(pid: int) -> bool:
    """Whether the process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a response in the one JSON error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["message"]
    return error
