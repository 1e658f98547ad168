"""A real plugin process on loopback: huge chunked bodies are cut short, and any header is a 401."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from process_kit import served_host, write_plugin

from ops_center_sdk.host.plugin_process import PluginProcess
from ops_center_sdk.protocol import MANAGED_ENV, MAX_BODY_ENV, SECRET_ENV

pytestmark = pytest.mark.slow

SECRET = "process-secret"
LIMIT = 1024 * 1024
CHUNK = b"x" * (64 * 1024)

PLUGIN = """
from ops_center_sdk import Plugin

plugin = Plugin(id="target", version="1.0.0")


@plugin.hook("device.created")
async def created(device_id, device_data):
    pass
"""


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[PluginProcess]:
    folder = write_plugin(tmp_path / "target", "target", PLUGIN)
    env = {
        "PATH": "/usr/bin:/bin",
        SECRET_ENV: SECRET,
        MANAGED_ENV: "1",
        MAX_BODY_ENV: str(LIMIT),
        "OPS_CENTER_STORAGE_URL": "memory://",
    }
    started = PluginProcess("target", folder, env, secret=SECRET)
    await started.start()
    try:
        async with httpx.AsyncClient() as client:
            await started.wait_ready(client, within=20)
        yield started
    finally:
        await started.stop(grace=3)


def peak_memory_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


async def test_an_unsigned_chunked_body_far_over_the_limit_is_cut_short(
    process: PluginProcess,
) -> None:
    assert process.pid is not None
    total = 256 * 1024 * 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < total:
            sent += len(CHUNK)
            yield CHUNK

    before = peak_memory_kib(process.pid)
    status: int | None = None
    async with httpx.AsyncClient(timeout=60) as client:
        try:
            response = await client.post(process.url + "/_ops/events", content=body())
            status = response.status_code
            code = response.json()["error"]["code"]
        except httpx.TransportError:
            code = "closed"  # the server hung up before the client could read the 413
    grown_mib = (peak_memory_kib(process.pid) - before) / 1024
    assert status in (413, None)
    assert code in ("body_too_large", "closed")
    # The server stopped reading: the client could not push the whole body...
    assert sent < total / 4, f"{sent} of {total} bytes were taken"
    # ...and held no more than about the limit.
    assert grown_mib < 16, f"the plugin process grew by {grown_mib:.0f} MiB"
    assert process.running


async def test_a_declared_length_over_the_limit_is_answered_at_once(
    process: PluginProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        writer.write(
            b"POST /_ops/events HTTP/1.1\r\nHost: plugin\r\n"
            b"Content-Length: 419430400\r\n\r\n" + CHUNK
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"connection: close" in head.lower()
    finally:
        writer.close()


async def test_any_signature_header_over_http_gets_401(process: PluginProcess) -> None:
    url = process.url + "/_ops/lifecycle/uninstall"
    # Only what HTTP can carry: no control characters, no surrounding blanks.
    header_text = st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=1500
    ).map(str.strip)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(header_text, st.one_of(st.none(), header_text))
    def check(signature: str, delivery: str | None) -> None:
        headers = {"X-Ops-Center-Signature": signature.encode()}
        if delivery is not None:
            headers["X-Ops-Center-Delivery"] = delivery.encode()
        with httpx.Client(timeout=10) as client:
            response = client.post(url, content=b"{}", headers=headers)
        assert response.status_code == 401, response.text
        assert json.loads(response.text)["error"]["code"] == "bad_signature"

    # The host's loop keeps reading the process's output while the checks run.
    await asyncio.to_thread(check)


#: Writes down every /_ops/ request it gets (method, path, delivery id), then serves it.
RECORDER = """
import json
import os
from pathlib import Path

from ops_center_sdk import Plugin

plugin = Plugin(id="recorder", version="1.0.0")
# Its folder is read-only in the sandbox; its data folder is its own.
CALLS = Path(os.environ["OPS_CENTER_DATA_DIR"]) / "calls.jsonl"


@plugin.hook("recorder.ping")
async def ping(n):
    pass


@plugin.filter_hook("device.data.process")
async def keep(data):
    return data


inner = plugin.create_app()


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith("/_ops/"):
        headers = dict(scope["headers"])
        call = {
            "method": scope["method"],
            "path": scope["path"],
            "delivery": headers.get(b"x-ops-center-delivery", b"").decode(),
            "signed": b"x-ops-center-signature" in headers,
        }
        with CALLS.open("a") as calls:
            calls.write(json.dumps(call) + "\\n")
    await inner(scope, receive, send)
"""


async def test_every_call_the_host_makes_is_signed_with_a_new_delivery_id(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = write_plugin(tmp_path / "recorder", "recorder", RECORDER)
    async with served_host(data_dir) as host:
        await host.install(folder, mode="process")
        created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
        assert created.status_code == 201
        for n in (1, 2):
            sent = await host.http.post(
                "/api/v1/events", json={"name": "recorder.ping", "payload": {"n": n}}
            )
            assert sent.status_code in (200, 201, 202), sent.text
        await host.settle()
        await host.get("/api/v1/plugins/recorder/health")
        assert (await host.http.post("/api/v1/plugins/recorder/disable")).status_code == 200
    calls = [
        json.loads(line)
        for line in (data_dir / "plugins" / "recorder" / "calls.jsonl").read_text().splitlines()
    ]
    kinds = {(call["method"], call["path"]) for call in calls}
    assert {
        ("GET", "/_ops/health"),
        ("POST", "/_ops/lifecycle/install"),
        ("POST", "/_ops/lifecycle/enable"),
        ("POST", "/_ops/filters/device.data.process"),
        ("POST", "/_ops/events"),
        ("POST", "/_ops/lifecycle/disable"),
    } <= kinds
    assert all(call["signed"] and call["delivery"] for call in calls)
    deliveries = [call["delivery"] for call in calls]
    assert len(set(deliveries)) == len(deliveries)  # never the same id twice
