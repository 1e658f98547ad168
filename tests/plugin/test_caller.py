"""The caller identity a host signs for a plugin route, and the plugin app's check of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Request

from ops_center_sdk import Caller, Plugin, get_caller
from ops_center_sdk.caller import CALLER_HEADER, sign_caller, verify_caller
from ops_center_sdk.signing import SignatureError

SECRET = "plugin-secret"
PATH = "/plugins/caller-plugin/who?x=1"
ADMIN = Caller("admin", "admin", "admin")


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_a_signed_caller_verifies_for_its_request_only() -> None:
    headers = lower(sign_caller(ADMIN, SECRET, method="GET", path=PATH))
    assert verify_caller(headers, SECRET, method="GET", path=PATH) == ADMIN
    for method, path in (("POST", PATH), ("GET", "/plugins/caller-plugin/who"), ("GET", "/x")):
        with pytest.raises(SignatureError):
            verify_caller(headers, SECRET, method=method, path=path)
    with pytest.raises(SignatureError):
        verify_caller(headers, "another-secret", method="GET", path=PATH)
    with pytest.raises(SignatureError, match="away from now"):
        verify_caller(headers, SECRET, method="GET", path=PATH, now=time.time() + 3600)


def test_a_changed_caller_does_not_verify() -> None:
    headers = lower(sign_caller(Caller("key", "ops", "key-1"), SECRET, method="GET", path=PATH))
    headers[CALLER_HEADER.lower()] = ADMIN.to_header()
    with pytest.raises(SignatureError, match="does not match"):
        verify_caller(headers, SECRET, method="GET", path=PATH)


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[]",
        '{"kind":"admin","id":"admin"}',
        '{"kind":"root","id":"admin","key_id":"k"}',
        '{"kind":"admin","id":"","key_id":"k"}',
        '{"kind":"admin","id":1,"key_id":"k"}',
        '{"kind":"admin","id":"admin","key_id":"k","extra":"x"}',
        '{"kind":"admin","id":"' + "a" * 600 + '","key_id":"k"}',
    ],
)
def test_a_caller_header_that_is_not_a_caller_is_refused(value: str) -> None:
    with pytest.raises(SignatureError):
        Caller.from_header(value)


def make_plugin() -> Plugin:
    plugin = Plugin(id="caller-plugin", version="1.0.0")

    @plugin.route("/who")
    async def who(request: Request) -> dict[str, object]:
        caller = get_caller(request)
        names = sorted(name for name in request.headers if name.startswith("x-ops-center"))
        return {"caller": caller.kind if caller else None, "headers": names}

    @plugin.route("/open", public=True)
    async def opened(request: Request) -> dict[str, object]:
        caller = get_caller(request)
        return {"caller": caller.kind if caller else None}

    return plugin


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_plugin().create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://plugin.test") as http:
        yield http


async def test_the_app_keeps_a_verified_caller_and_drops_its_headers(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_CENTER_PLUGIN_SECRET", SECRET)
    signed = sign_caller(ADMIN, SECRET, method="GET", path=PATH)
    response = await client.get(PATH, headers=signed)
    assert response.status_code == 200, response.text
    assert response.json() == {"caller": "admin", "headers": []}
    replayed = await client.get(PATH, headers=signed)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "bad_caller"
    # without the host (not managed) a plain request has no caller
    assert (await client.get(PATH)).json() == {"caller": None, "headers": []}


async def test_the_app_refuses_caller_headers_it_cannot_check(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_CENTER_PLUGIN_SECRET", raising=False)
    signed = sign_caller(ADMIN, SECRET, method="GET", path=PATH)
    no_secret = await client.get(PATH, headers=signed)
    assert no_secret.status_code == 401
    assert "OPS_CENTER_PLUGIN_SECRET" in no_secret.json()["error"]["message"]
    monkeypatch.setenv("OPS_CENTER_PLUGIN_SECRET", SECRET)
    unsigned = await client.get(PATH, headers={CALLER_HEADER: ADMIN.to_header()})
    twice = await client.get(PATH, headers=[(CALLER_HEADER, ADMIN.to_header()), *signed.items()])
    for refused in (unsigned, twice):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "bad_caller"
    assert "2 times" in twice.text


async def test_a_managed_app_needs_the_hosts_caller_on_private_routes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_CENTER_PLUGIN_SECRET", SECRET)
    monkeypatch.setenv("OPS_CENTER_MANAGED", "1")
    plain = await client.get(PATH)
    assert plain.status_code == 401
    assert plain.json()["error"]["code"] == "caller_required"
    signed = sign_caller(ADMIN, SECRET, method="GET", path=PATH)
    assert (await client.get(PATH, headers=signed)).json()["caller"] == "admin"
    assert (await client.get("/plugins/caller-plugin/open")).json() == {"caller": None}
    assert (await client.get("/plugins/caller-plugin/openapi.json")).status_code == 200
    assert (await client.get("/plugins/caller-plugin/nope")).status_code == 404


def test_public_must_be_a_bool() -> None:
    plugin = Plugin(id="caller-plugin", version="1.0.0")
    with pytest.raises(ValueError, match="public must be True or False"):
        plugin.route("/x", public="yes")(lambda: {})  # type: ignore[arg-type]


def test_a_public_route_is_marked_in_openapi() -> None:
    spec = make_plugin().create_app().openapi()
    assert spec["paths"]["/plugins/caller-plugin/open"]["get"]["x-ops-center-public"] is True
    assert "x-ops-center-public" not in spec["paths"]["/plugins/caller-plugin/who"]["get"]
