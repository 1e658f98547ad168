"""/_ops/ bodies are read with a limit before anything else: 413 without reading past it."""

from __future__ import annotations

import json

import pytest
from asgi_kit import RawRequest, endless
from starlette.applications import Starlette

from ops_center_sdk.errors import OpsCenterError
from ops_center_sdk.plugin import Plugin
from ops_center_sdk.protocol import MAX_BODY_BYTES, MAX_BODY_ENV, ProtocolEndpoints
from ops_center_sdk.signing import signed_headers
from ops_center_sdk.testing import create_test_plugin

SECRET = "limit-secret"
CHUNK = b"x" * 65536


@pytest.fixture
def plugin() -> Plugin:
    made = create_test_plugin("limited")

    @made.hook("device.deleted")
    async def on_deleted(device_id: str) -> None:
        pass

    return made


def app_for(plugin: Plugin, limit: int | None = None) -> Starlette:
    endpoints = ProtocolEndpoints(plugin, secret=SECRET, max_body_bytes=limit)
    return Starlette(routes=endpoints.routes())


def signed(body: bytes, path: str = "/_ops/events") -> list[tuple[bytes, bytes]]:
    headers = signed_headers(body, SECRET, method="POST", path=path)
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


async def test_a_declared_length_over_the_limit_is_refused_without_reading(
    plugin: Plugin,
) -> None:
    headers = [(b"content-length", str(400 * 1024 * 1024).encode())]
    answer = await RawRequest("POST", "/_ops/events", headers, endless(CHUNK)).send_to(
        app_for(plugin)
    )
    assert (answer.status, answer.json()["error"]["code"]) == (413, "body_too_large")
    assert "419430400 bytes, over the limit of 1048576 bytes" in answer.json()["error"]["message"]
    assert answer.chunks_read == 0
    assert answer.headers[b"connection"] == b"close"


@pytest.mark.parametrize("signature", ["none", "valid-looking"])
async def test_a_chunked_body_is_counted_as_it_arrives_and_cut_at_the_limit(
    plugin: Plugin, signature: str
) -> None:
    headers = signed(b"{}") if signature == "valid-looking" else []
    answer = await RawRequest("POST", "/_ops/events", headers, endless(CHUNK)).send_to(
        app_for(plugin)
    )
    assert (answer.status, answer.json()["error"]["code"]) == (413, "body_too_large")
    # Never more than the limit held: the chunk that passes it is the last one read.
    assert answer.chunks_read == MAX_BODY_BYTES // len(CHUNK) + 1
    assert answer.headers[b"connection"] == b"close"


async def test_the_limit_is_inclusive_and_checked_before_the_signature(plugin: Plugin) -> None:
    app = app_for(plugin, limit=200)
    envelope = {"id": "e1", "name": "device.deleted", "occurred_at": "", "payload": {}}
    envelope["payload"] = {"device_id": "d" * 10}
    body = json.dumps(envelope).encode()
    body += b" " * (200 - len(body))
    exact = await RawRequest("POST", "/_ops/events", signed(body), iter([body])).send_to(app)
    # Past the limit and the signature: only then is the plugin found disabled.
    assert (exact.status, exact.json()["error"]["code"]) == (409, "plugin_disabled")
    over = body + b" "
    too_big = await RawRequest("POST", "/_ops/events", signed(over), iter([over])).send_to(app)
    assert too_big.status == 413
    unsigned = await RawRequest("POST", "/_ops/events", [], iter([over])).send_to(app)
    assert unsigned.status == 413
    short_unsigned = await RawRequest("POST", "/_ops/events", [], iter([body])).send_to(app)
    assert short_unsigned.status == 401


async def test_a_client_that_goes_away_mid_body_gets_a_400_and_nothing_runs(
    plugin: Plugin,
) -> None:
    body = b'{"id": "e1", "name": "device.deleted", "payload": {"device_id": "d1"}}'
    request = RawRequest("POST", "/_ops/events", signed(body), iter([body[:20]]), disconnects=True)
    answer = await request.send_to(app_for(plugin))
    assert (answer.status, answer.json()["error"]["code"]) == (400, "incomplete_body")


async def test_the_limit_comes_from_the_environment(
    plugin: Plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_BODY_ENV, "4096")
    assert ProtocolEndpoints(plugin).max_body_bytes == 4096
    monkeypatch.delenv(MAX_BODY_ENV)
    assert ProtocolEndpoints(plugin).max_body_bytes == MAX_BODY_BYTES == 1024 * 1024


@pytest.mark.parametrize("value", ["lots", "-1", "0", "1e6", "\u0661\u0660"])
def test_a_bad_limit_in_the_environment_is_refused_by_name(
    plugin: Plugin, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(MAX_BODY_ENV, value)
    with pytest.raises(OpsCenterError, match=f"{MAX_BODY_ENV} must be a positive number"):
        plugin.create_app()
