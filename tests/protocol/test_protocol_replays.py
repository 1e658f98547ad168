"""A captured host request is good for nothing else: not another endpoint, not a second time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ops_center_sdk.plugin import Plugin
from ops_center_sdk.signing import DELIVERY_HEADER, signed_headers
from ops_center_sdk.testing import create_test_plugin

SECRET = "replay-secret"


@dataclass(frozen=True)
class Captured:
    """A signed request as an attacker on the path saw it: its headers and body bytes."""

    headers: dict[str, str]
    content: bytes


def capture(path: str, document: Any, method: str = "POST") -> Captured:
    body = json.dumps(document).encode()
    headers = signed_headers(body, SECRET, method=method, path=path)
    return Captured({**headers, "content-type": "application/json"}, body)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Plugin:
    monkeypatch.setenv("OPS_CENTER_PLUGIN_SECRET", SECRET)
    made = create_test_plugin("replay-target")
    made.calls = []  # type: ignore[attr-defined]

    @made.hook("device.deleted")
    async def on_deleted(device_id: str) -> None:
        made.calls.append(f"deleted {device_id}")  # type: ignore[attr-defined]

    @made.on_uninstall
    async def wipe() -> None:
        made.calls.append("on_uninstall")  # type: ignore[attr-defined]

    return made


@pytest.fixture
async def client(plugin: Plugin) -> AsyncIterator[httpx.AsyncClient]:
    await plugin.start()
    transport = httpx.ASGITransport(app=plugin.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://plugin") as made:
        yield made


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_a_signed_enable_replayed_to_disable_is_refused(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    enable = capture("/_ops/lifecycle/enable", {})
    assert (await client.post("/_ops/lifecycle/enable", **vars(enable))).status_code == 200
    status, code, message = refusal(await client.post("/_ops/lifecycle/disable", **vars(enable)))
    assert (status, code) == (401, "bad_signature")
    assert "does not match this request (POST /_ops/lifecycle/disable" in message
    assert plugin.enabled


async def test_a_request_never_delivered_is_still_refused_at_another_endpoint(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    # Captured on its way, before it arrived: the path is what gives it away.
    enable = capture("/_ops/lifecycle/enable", {})
    response = await client.post("/_ops/lifecycle/disable", **vars(enable))
    assert refusal(response)[:2] == (401, "bad_signature")
    assert plugin.enabled
    assert (await client.post("/_ops/lifecycle/enable", **vars(enable))).status_code == 200


async def test_the_same_request_sent_twice_is_refused_the_second_time(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    disable = capture("/_ops/lifecycle/disable", {})
    assert (await client.post("/_ops/lifecycle/disable", **vars(disable))).status_code == 200
    await plugin.enable()  # the host enables it again...
    again = await client.post("/_ops/lifecycle/disable", **vars(disable))
    status, code, message = refusal(again)
    assert (status, code) == (401, "bad_signature")
    assert f"delivery {disable.headers[DELIVERY_HEADER]!r} was already received" in message
    assert plugin.enabled  # ...and the replay did not disable it


async def test_an_event_delivery_replayed_to_uninstall_does_not_run_on_uninstall(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    event = {"id": "evt-1", "name": "device.deleted", "occurred_at": "", "payload": {}}
    delivery = capture("/_ops/events", {**event, "payload": {"device_id": "d1", "device_data": {}}})
    assert (await client.post("/_ops/events", **vars(delivery))).json()["status"] == "processed"
    for phase in ("uninstall", "disable", "install"):
        response = await client.post(f"/_ops/lifecycle/{phase}", **vars(delivery))
        assert refusal(response)[:2] == (401, "bad_signature")
    assert plugin.calls == ["deleted d1"]  # type: ignore[attr-defined]
    assert await plugin.is_installed()
    assert plugin.enabled


async def test_a_filter_call_replayed_to_another_filter_or_as_an_event_is_refused(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    call = capture("/_ops/filters/device.data.process", {"id": "f1", "data": {}})
    for path in ("/_ops/filters/other.plugin.filter", "/_ops/events"):
        response = await client.post(path, **vars(call))
        assert refusal(response)[:2] == (401, "bad_signature"), path
    assert plugin.calls == []  # type: ignore[attr-defined]


async def test_a_retried_event_has_a_new_delivery_id_and_is_a_duplicate_not_a_replay(
    client: httpx.AsyncClient, plugin: Plugin
) -> None:
    event = {"id": "evt-2", "name": "device.deleted", "occurred_at": "", "payload": {}}
    event["payload"] = {"device_id": "d2", "device_data": {}}
    first, retry = capture("/_ops/events", event), capture("/_ops/events", event)
    assert first.headers[DELIVERY_HEADER] != retry.headers[DELIVERY_HEADER]
    assert (await client.post("/_ops/events", **vars(first))).json()["status"] == "processed"
    assert (await client.post("/_ops/events", **vars(retry))).json() == {
        "id": "evt-2",
        "status": "duplicate",
    }
    replay = await client.post("/_ops/events", **vars(first))
    assert refusal(replay)[:2] == (401, "bad_signature")
    assert plugin.calls == ["deleted d2"]  # type: ignore[attr-defined]


async def test_a_query_string_is_part_of_the_signed_path(client: httpx.AsyncClient) -> None:
    signed_bare = capture("/_ops/lifecycle/enable", {})
    added = await client.post("/_ops/lifecycle/enable?force=1", **vars(signed_bare))
    assert refusal(added)[:2] == (401, "bad_signature")
    with_query = capture("/_ops/lifecycle/enable?force=1", {})
    kept = await client.post("/_ops/lifecycle/enable?force=1", **vars(with_query))
    assert kept.status_code == 200
