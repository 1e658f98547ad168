"""Routes served by create_app(): paths, parameters, return forms, OpenAPI, lifecycle."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.responses import PlainTextResponse

from ops_center_sdk.routes import RouteError
from ops_center_sdk.testing import create_test_plugin


class Stats(BaseModel):
    device_id: str
    samples: int


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_route_is_served_under_the_plugin_prefix_with_fastapi_parameters() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/devices/{device_id}/stats", methods=["GET"])
    async def get_device_stats(device_id: str, window: int = 10) -> dict[str, Any]:
        return {"device_id": device_id, "window": window}

    async with client_for(plugin.create_app()) as client:
        ok = await client.get("/plugins/route-plugin/devices/d-1/stats", params={"window": 5})
        bad = await client.get("/plugins/route-plugin/devices/d-1/stats", params={"window": "x"})
        unprefixed = await client.get("/devices/d-1/stats")
    assert ok.status_code == 200
    assert ok.json() == {"device_id": "d-1", "window": 5}
    assert bad.status_code == 422
    assert unprefixed.status_code == 404


async def test_tuple_model_response_and_sync_handlers() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/missing")
    async def missing() -> dict[str, Any]:
        return {"error": "Device not found"}, 404  # type: ignore[return-value]

    @plugin.route("/model")
    async def model() -> Stats:
        return Stats(device_id="d", samples=3)

    @plugin.route("/text")
    def text() -> PlainTextResponse:
        return PlainTextResponse("hello")

    @plugin.route("/echo", methods=["POST"])
    async def echo(body: Stats) -> dict[str, Any]:
        return {"got": body.model_dump()}, 201  # type: ignore[return-value]

    async with client_for(plugin.create_app()) as client:
        missing_r = await client.get("/plugins/route-plugin/missing")
        model_r = await client.get("/plugins/route-plugin/model")
        text_r = await client.get("/plugins/route-plugin/text")
        echo_r = await client.post(
            "/plugins/route-plugin/echo", json={"device_id": "d", "samples": 1}
        )
        echo_bad = await client.post("/plugins/route-plugin/echo", json={"device_id": "d"})
    assert (missing_r.status_code, missing_r.json()) == (404, {"error": "Device not found"})
    assert model_r.json() == {"device_id": "d", "samples": 3}
    assert text_r.text == "hello"
    assert echo_r.status_code == 201
    assert echo_r.json() == {"got": {"device_id": "d", "samples": 1}}
    assert echo_bad.status_code == 422


async def test_openapi_lists_the_plugin_routes() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/status")
    async def get_status() -> dict[str, Any]:
        """Returns plugin status"""
        return {"status": "running"}

    async with client_for(plugin.create_app()) as client:
        spec = (await client.get("/plugins/route-plugin/openapi.json")).json()
    assert "/plugins/route-plugin/status" in spec["paths"]
    assert spec["info"]["title"] == "route-plugin"


@pytest.mark.parametrize(
    ("path", "methods", "message"),
    [
        ("status", ["GET"], "must start with '/'"),
        ("/status", ["FETCH"], "unknown HTTP method"),
        ("/_ops/events", ["POST"], "reserved"),
        ("/has space", ["GET"], "cannot hold"),
    ],
)
def test_bad_route_declarations_are_refused(path: str, methods: list[str], message: str) -> None:
    plugin = create_test_plugin("route-plugin")
    with pytest.raises(RouteError, match=message) as caught:
        plugin.route(path, methods=methods)(lambda: None)
    assert path in str(caught.value)


async def test_a_single_method_may_be_given_as_a_string() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/ping", methods="post")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    assert plugin.routes[0].methods == ("POST",)
    with pytest.raises(RouteError, match=r"methods must be names"):
        plugin.route("/bad", methods=[1])(ping)  # type: ignore[list-item]
    async with client_for(plugin.create_app()) as client:
        response = await client.post("/plugins/route-plugin/ping")
    assert response.json() == {"pong": True}


def test_a_route_already_served_is_refused_naming_both_handlers() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/devices/{device_id}", methods=["GET", "DELETE"])
    async def first(device_id: str) -> dict[str, str]:
        return {}

    @plugin.route("/devices/{device_id}", methods=["PUT"])  # another method: fine
    async def replace(device_id: str) -> dict[str, str]:
        return {}

    with pytest.raises(
        RouteError, match=r"DELETE '/devices/\{device_id\}' is already served by handler 'first'"
    ) as caught:

        @plugin.route("/devices/{id}", methods=["POST", "DELETE"])
        async def second(id: str) -> dict[str, str]:
            return {}

    assert "second" in str(caught.value)
    assert [spec.handler_name for spec in plugin.routes] == ["first", "replace"]


async def test_a_tuple_with_a_bool_is_not_a_status_code() -> None:
    plugin = create_test_plugin("route-plugin")

    @plugin.route("/pair")
    async def pair() -> Any:
        return "ready", True

    async with client_for(plugin.create_app()) as client:
        response = await client.get("/plugins/route-plugin/pair")
    assert response.status_code == 200
    assert response.json() == ["ready", True]


async def test_standalone_app_installs_once_enables_and_disables(tmp_path: Any) -> None:
    plugin = create_test_plugin("life-plugin")
    calls: list[str] = []

    @plugin.on_install
    async def on_install() -> None:
        calls.append("install")

    @plugin.on_enable
    async def on_enable() -> None:
        calls.append("enable")

    @plugin.on_disable
    async def on_disable() -> None:
        calls.append("disable")

    app = plugin.create_app()
    async with app.router.lifespan_context(app):
        assert plugin.enabled
    assert not plugin.enabled
    async with app.router.lifespan_context(app):
        pass
    assert calls == ["install", "enable", "disable", "enable", "disable"]


async def test_routes_declared_after_create_app_are_served_from_startup() -> None:
    plugin = create_test_plugin("late-plugin")
    app = plugin.create_app()

    @plugin.route("/late")
    async def late() -> dict[str, bool]:
        return {"late": True}

    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.get("/plugins/late-plugin/late")
    assert response.json() == {"late": True}
