"""The client against the host served by uvicorn on 127.0.0.1 (a real socket)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from ops_center_sdk.api import APIClient, NotFoundError, PermissionDeniedError
from ops_center_sdk.host import EventEnvelope, HostStore, create_host_app
from served_app import served

pytestmark = pytest.mark.slow

KEY = "admin-over-http"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_host_app(data_dir=tmp_path, admin_key=KEY)


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    with served(app) as url:
        yield url


def test_calls_over_a_real_socket(app: FastAPI, server_url: str) -> None:
    delivered: list[str] = []
    app.state.bus.subscribe(lambda envelope: delivered.append(envelope["name"]))
    api = APIClient(server_url, KEY)

    async def session() -> None:
        device = await api.devices.create({"name": "New Device", "type": "server"})
        await api.devices.update(device["id"], {"status": "online"})
        assert [d["id"] for d in await api.devices.list(page=1, status="online")] == [device["id"]]
        with pytest.raises(NotFoundError):
            await api.devices.get("device-123")
        for index in range(5):
            await api.devices.create({"name": f"n{index}"})
        assert len([d async for d in api.devices.iterate(page_size=2)]) == 6
        await api.close()

    async def from_another_loop() -> int:
        try:
            return len(await api.devices.list(page_size=500))
        finally:
            await api.close()

    asyncio.run(session())
    # The same client from another event loop opens a fresh pool.
    assert asyncio.run(from_another_loop()) == 6

    limited = APIClient(server_url, KEY, permissions=["devices:read"])
    with pytest.raises(PermissionDeniedError, match=r"users\.list"):
        asyncio.run(limited.users.list())
    asyncio.run(api.close())
    assert delivered.count("device.created") == 6


def test_shutdown_delivers_queued_events_and_data_stays(app: FastAPI, tmp_path: Path) -> None:
    release = threading.Event()
    delivered: list[str] = []

    async def slow(envelope: EventEnvelope) -> None:
        await asyncio.to_thread(release.wait, 30)
        delivered.append(envelope["payload"]["device_id"])

    app.state.bus.subscribe(slow)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.01)

    async def create() -> None:
        async with APIClient(url, KEY) as api:
            await api.devices.create({"id": "d1", "name": "Web"})

    asyncio.run(create())
    assert delivered == []
    server.should_exit = True
    release.set()
    thread.join(timeout=30)
    sock.close()
    assert delivered == ["d1"]
    reopened = HostStore.in_directory(tmp_path)
    assert reopened.get("devices", "d1") is not None
    reopened.close()


def test_an_unreachable_host_is_a_connection_error() -> None:
    from ops_center_sdk.api import APIConnectionError, RetryPolicy

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = APIClient(f"http://127.0.0.1:{port}", KEY, retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(APIConnectionError, match="cannot reach"):
        asyncio.run(api.devices.list())
