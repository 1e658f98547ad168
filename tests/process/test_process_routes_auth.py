"""A plugin process's routes through the host: a key is needed, and only a signed caller passes.

The host checks the key, keeps the caller's credentials, and sends the
process who called, signed with the plugin's secret; the process's app
refuses caller headers that do not verify, even sent to its port directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from process_kit import ADMIN_KEY, ServedHost, error_of, served_host

from ops_center_sdk.caller import Caller, sign_caller

pytestmark = pytest.mark.slow

SPY = Path(__file__).resolve().parents[1] / "fixtures" / "route_spy"
CREDENTIALS = {"authorization", "proxy-authorization", "cookie"}


def header_names(body: dict[str, Any]) -> set[str]:
    return {name.lower() for name, _ in body["headers"]}


async def install_spy(host: ServedHost, tmp_path: Path) -> None:
    described = await host.install(shutil.copytree(SPY, tmp_path / "route-spy"), mode="process")
    assert described["mode"] == "process"
    assert described["status"] == "enabled"


async def test_process_routes_need_a_key_and_never_get_it(tmp_path: Path, data_dir: Path) -> None:
    async with served_host(data_dir) as host:
        await install_spy(host, tmp_path)
        async with httpx.AsyncClient(base_url=host.url, timeout=10) as anonymous:
            missing = await anonymous.get("/plugins/route-spy/headers")
            wrong = await anonymous.get(
                "/plugins/route-spy/headers", headers={"Authorization": "Bearer nope"}
            )
            public = await anonymous.get(
                "/plugins/route-spy/status", headers={"Cookie": "session=s3cret"}
            )
        for refused in (missing, wrong):
            assert refused.status_code == 401, refused.text
            assert error_of(refused)["code"] == "unauthorized"
        assert public.status_code == 200, public.text
        assert public.json() == {"ok": True, "caller": None}

        forged = sign_caller(
            Caller("plugin", "other", "k"),
            "guess",
            method="POST",
            path="/plugins/route-spy/headers",
        )
        seen = await host.http.post(
            "/plugins/route-spy/headers",
            content=b"payload",
            headers={"Cookie": "session=s3cret", "Proxy-Authorization": "Basic eA==", **forged},
        )
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert not header_names(body) & CREDENTIALS
        assert ADMIN_KEY not in seen.text
        assert "s3cret" not in seen.text
        assert body["caller"] == {"kind": "admin", "id": "admin", "key_id": "admin"}
        assert body["body"] == "payload"
        # the caller headers the plugin's app checked are not handed on to the handler either
        assert not any(name.startswith("x-ops-center-caller") for name in header_names(body))

        odd = await host.http.request("M-SEARCH", "/plugins/route-spy/headers")
        assert odd.status_code == 400, odd.text  # cannot be signed: refused, never a 500
        assert error_of(odd)["code"] == "bad_request"

        team = host.app.state.keys.issue("ops-team", [])
        queried = await host.http.get(
            "/plugins/route-spy/items/a%20b?x=1&y=2", headers={"Authorization": f"Bearer {team}"}
        )
        assert queried.status_code == 200, queried.text
        assert queried.json()["item"] == "a b"
        assert queried.json()["caller"]["kind"] == "key"
        assert queried.json()["caller"]["id"] == "ops-team"


async def test_plugin_info_lists_a_process_plugins_public_routes(
    tmp_path: Path, data_dir: Path
) -> None:
    async with served_host(data_dir) as host:
        await install_spy(host, tmp_path)
        routes = (await host.get("/api/v1/plugins/route-spy"))["routes"]
    assert {"path": "/plugins/route-spy/status", "methods": ["GET"], "public": True} in routes
    private = [r for r in routes if not r["public"]]
    assert {r["path"] for r in private} == {
        "/plugins/route-spy/headers",
        "/plugins/route-spy/items/{item_id}",
    }


async def test_the_process_refuses_callers_it_cannot_verify(tmp_path: Path, data_dir: Path) -> None:
    async with served_host(data_dir) as host:
        await install_spy(host, tmp_path)
        process = host.runtime("route-spy").process
        assert process is not None
        secret = process.secret
        path = "/plugins/route-spy/items/1"
        admin = Caller("admin", "admin", "admin")
        genuine = sign_caller(admin, secret, method="GET", path=path)
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as direct:
            unsigned = await direct.get(path, headers={"X-Ops-Center-Caller": admin.to_header()})
            forged = await direct.get(
                path, headers=sign_caller(admin, "guess", method="GET", path=path)
            )
            elsewhere = await direct.get("/plugins/route-spy/items/2", headers=genuine)
            accepted = await direct.get(path, headers=genuine)
            replayed = await direct.get(path, headers=genuine)
            plain = await direct.get(path)
            public = await direct.get("/plugins/route-spy/status")
            docs = await direct.get("/plugins/route-spy/openapi.json")
        for refused in (unsigned, forged, elsewhere, replayed):
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "bad_caller"
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["caller"] == {"kind": "admin", "id": "admin", "key_id": "admin"}
        assert "already" in replayed.text or "replay" in replayed.text
        # the host's key check cannot be skipped by calling the process's port
        assert plain.status_code == 401
        assert plain.json()["error"]["code"] == "caller_required"
        assert public.json() == {"ok": True, "caller": None}
        assert docs.status_code == 200
