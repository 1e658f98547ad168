"""Every call of the spec's "API Client" section, with its exact signature, against the host."""

from __future__ import annotations

import pytest
from api_kit import CountingTransport
from fastapi import FastAPI

from ops_center_sdk.api import APIClient, NotFoundError
from ops_center_sdk.host.rest.common import MAX_PAGE_SIZE, new_record


async def test_the_spec_example_runs_as_written(api: APIClient) -> None:
    # Devices
    created = await api.devices.create({"name": "New Device", "type": "server"})
    assert created["name"] == "New Device"
    assert created["type"] == "server"
    await api.devices.create({"id": "device-123", "name": "Spec Device", "type": "server"})
    await api.devices.update("device-123", {"status": "online"})
    devices = await api.devices.list(page=1, status="online")
    assert [d["id"] for d in devices] == ["device-123"]
    device = await api.devices.get("device-123")
    assert device["status"] == "online"
    updated = await api.devices.update("device-123", {"status": "maintenance"})
    assert updated["status"] == "maintenance"
    assert updated["name"] == "Spec Device"

    # Users
    await api.users.create({"id": "user-456", "email": "ann@example.com", "name": "Ann"})
    users = await api.users.list()
    assert [u["id"] for u in users] == ["user-456"]
    user = await api.users.get("user-456")
    assert user["email"] == "ann@example.com"

    # Organizations
    await api.organizations.create({"id": "org-789", "name": "Acme"})
    orgs = await api.organizations.list()
    assert [o["id"] for o in orgs] == ["org-789"]
    org = await api.organizations.get("org-789")
    assert org["name"] == "Acme"

    # Alerts
    alert = await api.alerts.create(
        {
            "device_id": "device-123",
            "severity": "warning",
            "title": "High CPU Usage",
            "message": "CPU usage is above 90%",
        }
    )
    assert alert["status"] == "active"
    await api.alerts.create({"id": "alert-123", "severity": "critical", "title": "Disk full"})
    alerts = await api.alerts.list(severity="critical", status="active")
    assert [a["id"] for a in alerts] == ["alert-123"]
    acknowledged = await api.alerts.acknowledge("alert-123")
    assert acknowledged["status"] == "acknowledged"
    assert await api.alerts.list(severity="critical", status="active") == []

    # Webhooks
    await api.webhooks.create(
        {"url": "https://example.com/webhook", "events": ["device.created", "alert.created"]}
    )
    webhooks = await api.webhooks.list()
    assert webhooks[0]["events"] == ["device.created", "alert.created"]

    await api.devices.delete("device-123")
    with pytest.raises(NotFoundError):
        await api.devices.get("device-123")


async def test_calls_beyond_the_example(api: APIClient) -> None:
    device = await api.devices.create({"name": "Web"})
    answer = await api.devices.push_metrics(device["id"], {"cpu_usage": 97.0})
    assert answer["metrics"] == {"cpu_usage": 97.0}
    assert (await api.devices.get(device["id"]))["last_metrics"] == {"cpu_usage": 97.0}

    alert = await api.alerts.create({"title": "Site down", "severity": "critical"})
    assert (await api.alerts.get(alert["id"]))["title"] == "Site down"
    resolved = await api.alerts.resolve(alert["id"])
    assert resolved["status"] == "resolved"

    user = await api.users.create({"email": "bob@example.com"})
    assert (await api.users.update(user["id"], {"role": "operator"}))["role"] == "operator"
    assert [u["id"] for u in await api.users.list(role="operator")] == [user["id"]]

    hook = await api.webhooks.create({"url": "http://127.0.0.1:9/h", "events": ["device.created"]})
    assert (await api.webhooks.get(hook["id"]))["url"] == "http://127.0.0.1:9/h"
    await api.webhooks.delete(hook["id"])
    assert await api.webhooks.list() == []

    assert (await api.request("GET", "/devices", params={"q": "we"}))["total"] == 1


async def test_keyword_ids_and_filters(api: APIClient) -> None:
    await api.organizations.create({"id": "org-1", "name": "Acme"})
    await api.devices.create({"id": "d1", "name": "Edge", "organization_id": "org-1"})
    await api.devices.create({"id": "d2", "name": "Core", "type": "network"})
    assert (await api.devices.get(device_id="d1"))["name"] == "Edge"
    assert [d["id"] for d in await api.devices.list(organization_id="org-1")] == ["d1"]
    assert [d["id"] for d in await api.devices.list(type="network")] == ["d2"]
    assert [d["id"] for d in await api.devices.list(q="cor")] == ["d2"]
    assert (await api.organizations.get(organization_id="org-1"))["name"] == "Acme"


async def test_list_pages_and_iterate_walks_them_all(
    api: APIClient, transport: CountingTransport
) -> None:
    for index in range(7):
        await api.devices.create({"id": f"d{index}", "name": f"n{index}", "status": "online"})
    await api.devices.create({"id": "off", "name": "off", "status": "offline"})
    assert [d["id"] for d in await api.devices.list(page=2, page_size=3)] == ["d3", "d4", "d5"]
    assert await api.devices.list(page=9, page_size=3) == []

    transport.requests.clear()
    walked = [d["id"] async for d in api.devices.iterate(status="online", page_size=3)]
    assert walked == [f"d{index}" for index in range(7)]
    assert len(transport.requests) == 3
    pages = [request.url.params["page"] for request in transport.requests]
    assert pages == ["1", "2", "3"]

    transport.requests.clear()
    exact = [d["id"] async for d in api.devices.iterate(page_size=4)]
    assert len(exact) == 8
    assert len(transport.requests) == 2  # the total says there is no third page


async def test_a_page_size_above_the_servers_maximum_is_served_and_walked(
    api: APIClient, app: FastAPI, transport: CountingTransport
) -> None:
    count = MAX_PAGE_SIZE + 3
    for index in range(count):  # straight into the store: a thousand POSTs would be slow
        app.state.store.insert("devices", new_record(f"d{index:04}", {"name": f"n{index}"}))
    assert len(await api.devices.list(page_size=1000)) == min(1000, MAX_PAGE_SIZE)
    assert len(await api.devices.list(page_size=MAX_PAGE_SIZE * 5)) == MAX_PAGE_SIZE
    assert len(await api.devices.list(page=2, page_size=MAX_PAGE_SIZE * 5)) == 3

    # The server serves fewer than asked per page: iterate must not take the
    # first (full) page for the last, nor skip or repeat anything.
    transport.requests.clear()
    walked = [d["id"] async for d in api.devices.iterate(page_size=MAX_PAGE_SIZE * 5)]
    assert walked == [f"d{index:04}" for index in range(count)]
    assert [r.url.params["page"] for r in transport.requests] == ["1", "2"]


async def test_requests_go_below_api_v1_with_the_key(
    api: APIClient, transport: CountingTransport
) -> None:
    await api.devices.list(page=1, status="online")
    request = transport.requests[-1]
    assert request.url.path == "/api/v1/devices"
    assert dict(request.url.params) == {"page": "1", "status": "online"}
    assert request.headers["authorization"] == "Bearer admin-test-key"
    with pytest.raises(NotFoundError):
        await api.devices.get("a/b")
    assert transport.requests[-1].url.raw_path == b"/api/v1/devices/a%2Fb"
