"""Plugin routes through the host need a key; the plugin sees who called, never the key."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from plugin_kit import ADMIN_KEY, RunningHost, write_plugin

from ops_center_sdk.caller import Caller, sign_caller

SPY = Path(__file__).resolve().parents[1] / "fixtures" / "route_spy"
CREDENTIALS = {"authorization", "proxy-authorization", "cookie"}
FORGED = Caller("admin", "admin", "admin")


async def install_spy(host: RunningHost, tmp_path: Path) -> None:
    folder = shutil.copytree(SPY, tmp_path / "route-spy")
    installed = await host.install(folder)
    assert installed.status_code == 201, installed.text


def anonymous(host: RunningHost) -> httpx.AsyncClient:
    return host.client(None)


def header_names(body: dict[str, Any]) -> set[str]:
    return {name.lower() for name, _ in body["headers"]}


def forged_headers(path: str) -> dict[str, str]:
    """Caller headers as a client could make them: signed, but not with the plugin's secret."""
    return sign_caller(FORGED, "not-the-secret", method="GET", path=path)


async def test_anonymous_and_bad_keys_get_the_hosts_401(host: RunningHost, tmp_path: Path) -> None:
    await install_spy(host, tmp_path)
    async with anonymous(host) as client:
        missing = await client.get("/plugins/route-spy/headers")
        wrong = await client.get(
            "/plugins/route-spy/headers", headers={"Authorization": "Bearer not-a-key"}
        )
        malformed = await client.get(
            "/plugins/route-spy/headers", headers={"Authorization": ADMIN_KEY}
        )
        posted = await client.post("/plugins/route-spy/headers", content=b"x")
        # a forged caller header is no key either
        forged = await client.get(
            "/plugins/route-spy/headers", headers=forged_headers("/plugins/route-spy/headers")
        )
    rest = await anonymous(host).get("/api/v1/devices")
    for response in (missing, wrong, malformed, posted, forged):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert set(body) == {"error"}
        assert body["error"]["code"] == "unauthorized"
        assert set(body["error"]) == set(rest.json()["error"])  # the REST API's own shape
    assert "missing API key" in missing.json()["error"]["message"]
    assert "invalid or revoked" in wrong.json()["error"]["message"]
    assert "malformed" in malformed.json()["error"]["message"]


async def test_a_revoked_key_is_refused(host: RunningHost, tmp_path: Path) -> None:
    await install_spy(host, tmp_path)
    key = host.app.state.keys.issue("ops-team", [])
    async with host.client(key) as client:
        assert (await client.get("/plugins/route-spy/items/a")).status_code == 200
        host.app.state.keys.revoke(key)
        assert (await client.get("/plugins/route-spy/items/a")).status_code == 401


async def test_two_authorization_headers_are_refused(host: RunningHost, tmp_path: Path) -> None:
    await install_spy(host, tmp_path)
    async with anonymous(host) as client:
        response = await client.get(
            "/plugins/route-spy/headers",
            headers=[("Authorization", "Bearer nope"), ("Authorization", f"Bearer {ADMIN_KEY}")],
        )
    assert response.status_code == 401
    assert "2 Authorization headers" in response.json()["error"]["message"]


async def test_the_plugin_never_sees_the_callers_credentials(
    host: RunningHost, tmp_path: Path
) -> None:
    await install_spy(host, tmp_path)
    response = await host.http.post(
        "/plugins/route-spy/headers",
        content=b"payload",
        headers={
            "Cookie": "session=s3cret",
            "Proxy-Authorization": "Basic czNjcmV0",
            "X-Trace": "kept",
            **forged_headers("/plugins/route-spy/headers"),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    names = header_names(body)
    assert not names & CREDENTIALS
    assert not any(name.startswith("x-ops-center-caller") for name in names)
    assert ["x-trace", "kept"] in body["headers"]
    assert ADMIN_KEY not in response.text
    assert "s3cret" not in response.text
    assert body["body"] == "payload"
    assert body["caller"] == {"kind": "admin", "id": "admin", "key_id": "admin"}


async def test_the_plugin_sees_which_key_called(host: RunningHost, tmp_path: Path) -> None:
    await install_spy(host, tmp_path)
    keys = host.app.state.keys
    team = keys.issue("ops-team", ["devices:read"])
    other_plugin = keys.issue("plugin:other-plugin", [])
    team_id = keys.authenticate(team).key_id
    async with host.client(team) as client:
        seen = (await client.get("/plugins/route-spy/items/42")).json()
    assert seen == {"item": "42", "caller": {"kind": "key", "id": "ops-team", "key_id": team_id}}
    async with host.client(other_plugin) as client:
        caller = (await client.get("/plugins/route-spy/items/42")).json()["caller"]
    assert caller["kind"] == "plugin"
    assert caller["id"] == "other-plugin"
    assert team not in str(seen)
    assert other_plugin not in str(caller)


async def test_a_public_route_needs_no_key_and_still_gets_no_credentials(
    host: RunningHost, tmp_path: Path
) -> None:
    await install_spy(host, tmp_path)
    async with anonymous(host) as client:
        plain = await client.get("/plugins/route-spy/status")
        forged = await client.get(
            "/plugins/route-spy/status",
            headers={"Cookie": "session=s3cret", **forged_headers("/plugins/route-spy/status")},
        )
        bad_key = await client.get(
            "/plugins/route-spy/status", headers={"Authorization": "Bearer not-a-key"}
        )
        private = await client.get("/plugins/route-spy/items/1")
    assert plain.status_code == 200, plain.text
    assert plain.json() == {"ok": True, "caller": None}
    assert forged.json() == {"ok": True, "caller": None}  # forged identity dropped
    assert bad_key.status_code == 401  # a key that is sent is checked
    assert private.status_code == 401  # public is per route
    keyed = await host.http.get("/plugins/route-spy/status")
    assert keyed.json()["caller"]["kind"] == "admin"


async def test_plugin_info_lists_routes_with_their_public_flag(
    host: RunningHost, tmp_path: Path
) -> None:
    await install_spy(host, tmp_path)
    described = (await host.http.get("/api/v1/plugins/route-spy")).json()
    assert described["routes"] == [
        {"path": "/plugins/route-spy/headers", "methods": ["GET", "POST"], "public": False},
        {"path": "/plugins/route-spy/items/{item_id}", "methods": ["GET"], "public": False},
        {"path": "/plugins/route-spy/status", "methods": ["GET"], "public": True},
    ]


async def test_nothing_about_plugins_is_told_without_a_key(host: RunningHost) -> None:
    async with anonymous(host) as client:
        unknown = await client.get("/plugins/nope/status")
    assert unknown.status_code == 401
    assert "nope" not in unknown.text


DISAGREE = """
from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", version="1.0.0")


@plugin.route("/status", public={code})
async def status():
    return {{"ok": True}}
"""


@pytest.mark.parametrize(
    ("code", "manifest", "public"),
    [
        (True, "", True),  # only the code declares the route
        (True, "\n    public: false", False),  # they disagree: a key is needed
        (False, "\n    public: true", False),
        (True, "\n    public: true", True),
    ],
)
async def test_code_and_plugin_yaml_must_both_say_public(
    host: RunningHost, tmp_path: Path, code: bool, manifest: str, public: bool
) -> None:
    routes = f"routes:\n  - path: /status\n    handler: status{manifest}\n" if manifest else ""
    main = DISAGREE.format(id="toggle", code=code)
    installed = await host.install(write_plugin(tmp_path / "toggle", "toggle", main, routes))
    assert installed.status_code == 201, installed.text
    async with anonymous(host) as client:
        response = await client.get("/plugins/toggle/status")
    assert response.status_code == (200 if public else 401)
    [route] = (await host.http.get("/api/v1/plugins/toggle")).json()["routes"]
    assert route["public"] is public
