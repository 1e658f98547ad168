"""The /_ops/ endpoints of create_app(): signed, idempotent, and safe with bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ops_center_sdk.plugin import Plugin
from ops_center_sdk.protocol import INSTANCE_ID, MAX_BODY_BYTES
from ops_center_sdk.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    sign_delivery,
    signed_headers,
)
from ops_center_sdk.testing import create_test_plugin

SECRET = "test-secret"


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Plugin:
    monkeypatch.setenv("OPS_CENTER_PLUGIN_SECRET", SECRET)
    made = create_test_plugin("wire-plugin")
    made.seen = []  # type: ignore[attr-defined]

    @made.hook("device.deleted")
    async def on_deleted(device_id: str) -> None:
        made.seen.append(device_id)  # type: ignore[attr-defined]

    @made.filter_hook("device.data.process")
    async def tag(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "tagged": True}

    return made


@pytest.fixture
async def client(plugin: Plugin) -> AsyncIterator[httpx.AsyncClient]:
    await plugin.start()
    transport = httpx.ASGITransport(app=plugin.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://plugin") as made:
        yield made


def signed(path: str, document: Any, secret: str = SECRET, method: str = "POST") -> dict[str, Any]:
    """Keywords for ``client.request(method, path, ...)``: a body signed for that request."""
    body = json.dumps(document).encode()
    return {
        "content": body,
        "headers": {
            **signed_headers(body, secret, method=method, path=path),
            "content-type": "application/json",
        },
    }


async def post(client: httpx.AsyncClient, path: str, document: Any) -> httpx.Response:
    return await client.post(path, **signed(path, document))


async def health(client: httpx.AsyncClient) -> httpx.Response:
    headers = signed_headers(b"", SECRET, method="GET", path="/_ops/health")
    return await client.get("/_ops/health", headers=headers)


def envelope(event_id: str = "evt-1", **payload: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "name": "device.deleted",
        "occurred_at": "2026-01-01T00:00:00Z",
        "payload": payload or {"device_id": "d1", "device_data": {"id": "d1", "name": "Web"}},
    }


async def test_a_signed_event_runs_the_hooks_once(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    first = await post(client, "/_ops/events", envelope())
    again = await post(client, "/_ops/events", envelope())
    assert first.json() == {
        "id": "evt-1",
        "status": "processed",
        "handlers_run": 1,
        "failures": 0,
        "failed": [],
    }
    assert again.json() == {"id": "evt-1", "status": "duplicate"}
    assert plugin.seen == ["d1"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "no-delivery-id", "wrong-secret", "tampered", "other-delivery-id", "stale"],
)
async def test_bad_signatures_get_401_and_run_nothing(
    client: httpx.AsyncClient, plugin: Plugin, tamper: str
) -> None:
    secret = "other" if tamper == "wrong-secret" else SECRET
    request = signed("/_ops/events", envelope(), secret=secret)
    if tamper == "unsigned":
        del request["headers"][SIGNATURE_HEADER]
    if tamper == "no-delivery-id":
        del request["headers"][DELIVERY_HEADER]
    if tamper == "tampered":
        request["content"] = request["content"].replace(b"d1", b"d2")
    if tamper == "other-delivery-id":
        request["headers"][DELIVERY_HEADER] = "another-delivery"
    if tamper == "stale":
        request["headers"][SIGNATURE_HEADER] = sign_delivery(
            request["content"],
            SECRET,
            method="POST",
            path="/_ops/events",
            delivery_id=request["headers"][DELIVERY_HEADER],
            timestamp=1_000_000_000,
        )
    response = await client.post("/_ops/events", **request)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert plugin.seen == []  # type: ignore[attr-defined]


async def test_without_a_secret_everything_is_refused(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_CENTER_PLUGIN_SECRET")
    assert (await post(client, "/_ops/events", envelope())).status_code == 503
    assert (await health(client)).status_code == 503


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ("not json", 400, "invalid_json"),
        ([1, 2], 422, "validation_error"),
        ({"name": "device.deleted", "payload": {}}, 422, "validation_error"),
        ({**envelope(), "name": "device.delted"}, 422, "invalid_event"),
        ({**envelope(), "payload": {"wrong": 1}}, 422, "invalid_event"),
    ],
)
async def test_malformed_envelopes_get_a_clear_4xx(
    client: httpx.AsyncClient, document: Any, status: int, code: str
) -> None:
    if document == "not json":
        body = b"{nope"
        headers = signed_headers(body, SECRET, method="POST", path="/_ops/events")
        request = {"content": body, "headers": headers}
    else:
        request = signed("/_ops/events", document)
    response = await client.post("/_ops/events", **request)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_a_rejected_event_can_be_delivered_again_once_fixed(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    await post(client, "/_ops/events", envelope(wrong=1))
    fixed = await post(client, "/_ops/events", envelope())
    assert fixed.json()["status"] == "processed"


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    big = envelope(device_id="x" * (MAX_BODY_BYTES + 1))
    response = await post(client, "/_ops/events", big)
    assert response.status_code == 413


async def test_an_event_left_processing_by_a_crashed_process_runs_again(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    await plugin.system_storage.set(
        "delivery:evt-9", {"state": "processing", "instance": "dead-process", "at": 0}
    )
    response = await post(client, "/_ops/events", envelope("evt-9"))
    assert response.json()["status"] == "processed"
    await plugin.system_storage.set(
        "delivery:evt-10", {"state": "processing", "instance": INSTANCE_ID, "at": 0}
    )
    busy = await post(client, "/_ops/events", envelope("evt-10"))
    assert busy.status_code == 409


async def test_filters_answer_with_the_filtered_data(client: httpx.AsyncClient) -> None:
    response = await post(
        client, "/_ops/filters/device.data.process", {"id": "f1", "data": {"name": "x"}}
    )
    assert response.json() == {"id": "f1", "data": {"name": "x", "tagged": True}}
    unknown = await post(client, "/_ops/filters/device.data.procss", {"id": "f2", "data": {}})
    assert unknown.status_code == 422


async def test_lifecycle_and_health(client: httpx.AsyncClient, plugin: Plugin) -> None:
    await plugin.uninstall()
    document = (await health(client)).json()
    assert (document["id"], document["status"], document["protocol"]) == (
        "wire-plugin",
        "disabled",
        2,
    )
    assert document["hooks"] == {"events": ["device.deleted"], "filters": ["device.data.process"]}
    assert {(s["kind"], s["hook"], s["priority"]) for s in document["handler_stats"]} == {
        ("action", "device.deleted", 10),
        ("filter", "device.data.process", 10),
    }
    for phase in ("install", "enable"):
        response = await post(client, f"/_ops/lifecycle/{phase}", {})
        assert response.status_code == 200
    assert plugin.enabled
    assert (await health(client)).json()["status"] == "ok"
    assert (await post(client, "/_ops/lifecycle/explode", {})).status_code == 404
    assert (await client.post("/_ops/lifecycle/disable")).status_code == 401
    assert (await client.get("/_ops/health")).status_code == 401  # health is signed too
    assert plugin.enabled


async def test_a_failing_lifecycle_step_is_a_500_with_the_reason(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    @plugin.on_install
    async def broken() -> None:
        raise RuntimeError("no database")

    await plugin.uninstall()
    response = await post(client, "/_ops/lifecycle/install", {})
    assert response.status_code == 500
    assert "no database" in response.json()["error"]["message"]
    document = (await health(client)).json()
    assert "no database" in document["recent_failures"][-1]["error"]


async def test_a_disabled_plugin_refuses_deliveries_until_enabled(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    await plugin.disable()
    refused = await post(client, "/_ops/events", envelope())
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "plugin_disabled")
    await plugin.enable()
    accepted = await post(client, "/_ops/events", envelope())
    assert accepted.json()["status"] == "processed"
    assert plugin.seen == ["d1"]  # type: ignore[attr-defined]


async def test_managed_app_leaves_the_lifecycle_to_the_host(
    plugin: Plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_CENTER_MANAGED", "1")
    app = plugin.create_app()
    async with app.router.lifespan_context(app):
        assert not plugin.enabled
        assert not await plugin.is_installed()
        await plugin.start()
    assert not plugin.enabled  # the process stopped; on_disable is the host's call
    assert await plugin.is_installed()
