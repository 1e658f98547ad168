"""Failed calls raise typed errors carrying the server's code, message and details."""

from __future__ import annotations

import httpx
import pytest
from api_kit import ADMIN_KEY, BASE_URL
from fastapi import FastAPI

from ops_center_sdk.api import (
    APIClient,
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    ValidationError,
)
from ops_center_sdk.errors import OpsCenterError


async def test_unknown_ids_are_not_found(api: APIClient) -> None:
    calls = [
        api.devices.get("device-123"),
        api.devices.update("device-123", {"status": "online"}),
        api.devices.delete("device-123"),
        api.devices.push_metrics("device-123", {"cpu": 1}),
        api.users.get("user-456"),
        api.users.update("user-456", {"name": "x"}),
        api.organizations.get("org-789"),
        api.alerts.get("alert-123"),
        api.alerts.acknowledge("alert-123"),
        api.alerts.resolve("alert-123"),
        api.webhooks.get("webhook-1"),
        api.webhooks.delete("webhook-1"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as caught:
            await call
        error = caught.value
        assert error.status == 404
        assert error.code == "not_found"
        assert isinstance(error, APIError)
        assert isinstance(error, OpsCenterError)
        assert error.method
        assert error.endpoint
        assert error.endpoint in str(error)


async def test_a_taken_id_is_a_conflict(api: APIClient) -> None:
    await api.devices.create({"id": "device-1", "name": "First"})
    with pytest.raises(ConflictError, match="device-1"):
        await api.devices.create({"id": "device-1", "name": "Second"})
    assert (await api.devices.get("device-1"))["name"] == "First"


async def test_a_bad_body_is_a_validation_error_naming_the_field(api: APIClient) -> None:
    with pytest.raises(ValidationError) as caught:
        await api.devices.create({"type": "server", "status": "sleeping"})
    error = caught.value
    assert error.status == 422
    assert error.code == "validation_error"
    assert {d["field"] for d in error.details} == {"body.name", "body.status"}
    assert "body.name" in str(error)
    with pytest.raises(ValidationError, match="did you mean 'status'"):
        await api.devices.list(stauts="online")
    with pytest.raises(ValidationError) as caught:
        await api.devices.list(page=0)
    assert caught.value.details[0]["field"] == "query.page"
    for page_size in (0, -1, "abc"):
        with pytest.raises(ValidationError) as caught:
            await api.devices.list(page_size=page_size)  # type: ignore[arg-type]
        assert caught.value.status == 422
        assert [d["field"] for d in caught.value.details] == ["query.page_size"]


async def test_an_alert_about_an_unknown_device_is_raised_as_given(api: APIClient) -> None:
    alert = await api.alerts.create({"device_id": "device-123", "title": "t"})
    assert (alert["device_id"], alert["severity"]) == ("device-123", "info")


async def test_an_unknown_organization_is_a_validation_error_naming_the_field(
    api: APIClient,
) -> None:
    with pytest.raises(ValidationError) as caught:
        await api.devices.create({"name": "Web", "organization_id": "org-nowhere"})
    assert caught.value.status == 422
    assert caught.value.details[0]["field"] == "body.organization_id"
    assert "org-nowhere" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        await api.users.create({"email": "ann@example.com", "organization_id": "org-nowhere"})
    assert caught.value.details[0]["field"] == "body.organization_id"


async def test_bad_arguments_fail_before_any_request(api: APIClient) -> None:
    with pytest.raises(ValueError, match="device id"):
        await api.devices.get("")
    with pytest.raises(TypeError, match=r"devices\.create\(\) takes a dict"):
        await api.devices.create([("name", "x")])  # type: ignore[arg-type]


async def test_bad_or_missing_keys_are_authentication_errors(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with APIClient(BASE_URL, "wrong", transport=transport) as api:
        with pytest.raises(AuthenticationError) as caught:
            await api.devices.list()
        assert caught.value.status == 401
    async with APIClient(BASE_URL, transport=transport) as api:
        with pytest.raises(AuthenticationError, match="OPS_CENTER_API_KEY"):
            await api.devices.list()


async def test_server_403_is_permission_denied_with_the_permission(app: FastAPI) -> None:
    key = app.state.keys.issue("my-plugin", ["devices:read"])
    async with APIClient(BASE_URL, key, transport=httpx.ASGITransport(app=app)) as api:
        with pytest.raises(PermissionDeniedError) as caught:
            await api.users.list()
        assert caught.value.status == 403
        assert caught.value.permission == "users:read"


async def test_oversized_bodies_are_refused_with_413(app: FastAPI) -> None:
    async with APIClient(BASE_URL, ADMIN_KEY, transport=httpx.ASGITransport(app=app)) as api:
        with pytest.raises(APIError) as caught:
            await api.devices.create({"name": "big", "blob": "x" * (2 * 1024 * 1024)})
        assert caught.value.status == 413
        assert caught.value.code == "payload_too_large"
        assert await api.devices.list() == []


async def test_errors_of_other_shapes_are_still_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/devices/plain"):
            return httpx.Response(501, text="not here")
        return httpx.Response(404, json={"detail": "Not Found"})

    async with APIClient(BASE_URL, "k", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(NotFoundError, match="Not Found"):
            await api.devices.get("x")
        with pytest.raises(ServerError, match="not here") as caught:
            await api.devices.get("plain")
        assert caught.value.status == 501


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/hook", "https://example.com:x/hook"])
async def test_a_webhook_url_with_an_impossible_port_is_refused(api: APIClient, url: str) -> None:
    # Found probing the schemathesis run's inputs: it was stored, and every delivery failed.
    with pytest.raises(ValidationError) as caught:
        await api.webhooks.create({"url": url, "events": ["device.created"]})
    assert caught.value.status == 422
    assert [d["field"] for d in caught.value.details] == ["body.url"]
    assert "port" in caught.value.details[0]["message"]
    assert await api.webhooks.list() == []
