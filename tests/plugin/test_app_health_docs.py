"""The plugin app's ``GET /health`` liveness and its offline ``/docs`` and ``/redoc`` pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from ops_center_sdk.testing import create_test_plugin


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_health_answers_liveness_only_without_a_signature() -> None:
    plugin = create_test_plugin("alive-plugin", version="2.3.4")

    @plugin.hook("device.created")
    async def secret_handler(device_id: str) -> None: ...

    async with client_for(plugin.create_app()) as client:
        root = await client.get("/health")
        prefixed = await client.get("/plugins/alive-plugin/health")
        ops = await client.get("/_ops/health")
    expected = {"status": "ok", "plugin": "alive-plugin", "version": "2.3.4"}
    assert (root.status_code, root.json()) == (200, expected)
    assert (prefixed.status_code, prefixed.json()) == (200, expected)
    assert "secret_handler" not in root.text
    assert ops.status_code in (401, 503)  # the detailed document stays signed


async def test_a_plugin_health_route_keeps_its_path_and_root_health_stays_liveness() -> None:
    plugin = create_test_plugin("alive-plugin")
    app = plugin.create_app()

    @plugin.route("/health")  # declared after create_app: it still wins its path
    async def own_health() -> dict[str, Any]:
        return {"mine": True}

    async with app.router.lifespan_context(app), client_for(app) as client:
        own = await client.get("/plugins/alive-plugin/health")
        root = await client.get("/health")
    assert own.json() == {"mine": True}
    assert root.json()["plugin"] == "alive-plugin"


async def test_liveness_is_not_listed_as_a_plugin_route() -> None:
    plugin = create_test_plugin("alive-plugin")

    @plugin.route("/status")
    async def status() -> dict[str, Any]:
        return {}

    async with client_for(plugin.create_app()) as client:
        paths = (await client.get("/plugins/alive-plugin/openapi.json")).json()["paths"]
    assert list(paths) == ["/plugins/alive-plugin/status"]


LOCAL_URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


async def assert_page_loads_only_local_assets(client: httpx.AsyncClient, page: str) -> set[str]:
    """Every URL the page references is local and answers 200 (JS as JS, CSS as CSS)."""
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html, html
    assert "https://" not in html, html
    urls = set(LOCAL_URL.findall(html))
    assert urls, html
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
            assert len(asset.content) > 100_000  # the real bundle, not a stub
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")
    return urls


@pytest.mark.parametrize("page", ["docs", "redoc"])
async def test_docs_pages_load_only_assets_the_app_serves(page: str) -> None:
    plugin = create_test_plugin("docs-plugin")
    async with client_for(plugin.create_app()) as client:
        urls = await assert_page_loads_only_local_assets(client, f"/plugins/docs-plugin/{page}")
        schema = await client.get("/plugins/docs-plugin/openapi.json")
    assert "/plugins/docs-plugin/openapi.json" in urls
    assert schema.status_code == 200
    bundle = "swagger-ui-bundle.js" if page == "docs" else "redoc.standalone.js"
    assert f"/plugins/docs-plugin/docs-assets/{bundle}" in urls
