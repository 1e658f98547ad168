"""API keys: 401 without a valid key, 403 without the permission, keys stored hashed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from fastapi import FastAPI
from host_kit import ADMIN_KEY, error_of, http_client

from ops_center_sdk.host import create_host_app
from ops_center_sdk.host.store import DB_FILE


async def test_missing_malformed_and_unknown_keys_are_401(app: FastAPI) -> None:
    cases = [
        {},
        {"Authorization": f"Token {ADMIN_KEY}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
    ]
    async with http_client(app, key=None) as client:
        for headers in cases:
            response = await client.get("/devices", headers=headers)
            assert response.status_code == 401, headers
            assert error_of(response)["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_auth_is_checked_before_the_body(app: FastAPI) -> None:
    async with http_client(app, key=None) as client:
        response = await client.post("/devices", json={"bad": True})
        assert response.status_code == 401


async def test_a_key_without_the_permission_is_403_naming_it(app: FastAPI) -> None:
    key = app.state.keys.issue("my-plugin", ["devices:read"])
    async with http_client(app, key) as client:
        assert (await client.get("/devices")).status_code == 200
        response = await client.get("/users")
        assert response.status_code == 403
        error = error_of(response)
        assert error["code"] == "permission_denied"
        assert "users:read" in error["message"]
        assert "my-plugin" in error["message"]
        assert error["details"] == [{"permission": "users:read"}]
        # write does not include read, nor read write
        response = await client.post("/devices", json={"name": "x"})
        assert response.status_code == 403
        assert error_of(response)["details"] == [{"permission": "devices:write"}]


async def test_each_route_needs_its_catalog_permission(app: FastAPI) -> None:
    key = app.state.keys.issue("reader", [])
    calls = {
        ("GET", "/devices"): "devices:read",
        ("GET", "/devices/x"): "devices:read",
        ("POST", "/devices"): "devices:write",
        ("PATCH", "/devices/x"): "devices:write",
        ("PUT", "/devices/x"): "devices:write",
        ("DELETE", "/devices/x"): "devices:write",
        ("POST", "/devices/x/metrics"): "metrics:write",
        ("GET", "/users"): "users:read",
        ("POST", "/users"): "users:write",
        ("PATCH", "/users/x"): "users:write",
        ("GET", "/organizations/x"): "organizations:read",
        ("POST", "/organizations"): "organizations:write",
        ("GET", "/alerts"): "alerts:read",
        ("POST", "/alerts"): "alerts:write",
        ("POST", "/alerts/x/acknowledge"): "alerts:write",
        ("POST", "/alerts/x/resolve"): "alerts:write",
        ("GET", "/webhooks"): "webhooks:read",
        ("POST", "/webhooks"): "webhooks:write",
        ("DELETE", "/webhooks/x"): "webhooks:write",
    }
    async with http_client(app, key) as client:
        for (method, path), permission in calls.items():
            response = await client.request(method, path, json={} if method != "GET" else None)
            assert response.status_code == 403, (method, path)
            assert error_of(response)["details"] == [{"permission": permission}], (method, path)


async def test_revoked_keys_stop_working(app: FastAPI) -> None:
    keys = app.state.keys
    first = keys.issue("p1", ["devices:read"])
    second = keys.issue("p1", ["devices:read"])
    other = keys.issue("p2", ["devices:read"])
    assert keys.revoke(first)
    assert not keys.revoke(first)
    async with http_client(app, first) as client:
        assert (await client.get("/devices")).status_code == 401
    assert keys.revoke_owner("p1") == 1
    async with http_client(app, second) as client:
        assert (await client.get("/devices")).status_code == 401
    async with http_client(app, other) as client:
        assert (await client.get("/devices")).status_code == 200


async def test_keys_are_stored_hashed_and_survive_a_restart(data_dir: Path) -> None:
    app = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    key = app.state.keys.issue("my-plugin", ["devices:read"])
    app.state.store.close()
    raw = (data_dir / DB_FILE).read_bytes()
    with sqlite3.connect(data_dir / DB_FILE) as db:
        dump = "\n".join(db.iterdump())
    assert key not in dump
    assert key.encode() not in raw
    assert ADMIN_KEY not in dump

    restarted = create_host_app(data_dir=data_dir, admin_key="another-admin")
    async with http_client(restarted, key) as client:
        assert (await client.get("/devices")).status_code == 200
        assert (await client.get("/users")).status_code == 403
    async with http_client(restarted, ADMIN_KEY) as client:
        assert (await client.get("/devices")).status_code == 401
    restarted.state.store.close()


async def test_admin_key_has_every_permission(client: httpx.AsyncClient) -> None:
    for path in ("/devices", "/users", "/organizations", "/alerts", "/webhooks"):
        assert (await client.get(path)).status_code == 200, path


def test_a_generated_admin_key_is_exposed() -> None:
    app = create_host_app()
    assert app.state.keys.authenticate(app.state.admin_key).is_admin
    app.state.store.close()
