"""Calls a plugin's permissions do not allow fail before any request is sent."""

from __future__ import annotations

import pytest
from api_kit import BASE_URL, CountingTransport
from fastapi import FastAPI

from ops_center_sdk.api import APIClient, PermissionDeniedError
from ops_center_sdk.permissions import REQUIRED_PERMISSION


@pytest.fixture
def manifest_permissions() -> list[str]:
    return ["devices:read", "devices:write", "alerts:write", "users:read"]


async def test_refused_calls_name_the_call_and_the_permission(
    app: FastAPI, transport: CountingTransport, manifest_permissions: list[str]
) -> None:
    key = app.state.keys.issue("my-plugin", manifest_permissions)
    api = APIClient(BASE_URL, key, permissions=manifest_permissions, transport=transport)
    refused = {
        "alerts.list": (api.alerts.list(severity="critical"), "alerts:read"),
        "alerts.get": (api.alerts.get("a1"), "alerts:read"),
        "organizations.create": (api.organizations.create({"name": "x"}), "organizations:write"),
        "users.create": (api.users.create({"email": "a@b.cd"}), "users:write"),
        "webhooks.list": (api.webhooks.list(), "webhooks:read"),
        "devices.push_metrics": (api.devices.push_metrics("d1", {"cpu": 1}), "metrics:write"),
    }
    for call, (coroutine, permission) in refused.items():
        with pytest.raises(PermissionDeniedError) as caught:
            await coroutine
        error = caught.value
        assert error.call == call
        assert error.permission == permission
        assert call in str(error)
        assert permission in str(error)
        assert error.status is None
    with pytest.raises(PermissionDeniedError, match=r"alerts\.iterate"):
        async for _ in api.alerts.iterate():
            pass
    assert transport.requests == []

    # What the permissions allow goes through.
    device = await api.devices.create({"name": "Web"})
    await api.alerts.create({"device_id": device["id"], "severity": "info", "title": "t"})
    assert await api.users.list() == []
    assert len(transport.requests) == 3
    await api.close()


async def test_no_permissions_means_no_client_side_limit(
    app: FastAPI, transport: CountingTransport
) -> None:
    key = app.state.keys.issue("reader", ["devices:read"])
    async with APIClient(BASE_URL, key, transport=transport) as api:
        with pytest.raises(PermissionDeniedError) as caught:
            await api.users.list()
        assert caught.value.status == 403  # the server refused it
        assert len(transport.requests) == 1


def test_allows_follows_the_catalog(manifest_permissions: list[str]) -> None:
    api = APIClient(BASE_URL, "k", permissions=manifest_permissions)
    for (resource, call), permission in REQUIRED_PERMISSION.items():
        assert api.allows(resource, call) == (permission in manifest_permissions)
    assert APIClient(BASE_URL, "k").allows("users", "list")
    assert not APIClient(BASE_URL, "k", permissions=[]).allows("devices", "get")
