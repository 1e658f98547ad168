"""The host's ``/docs`` and ``/redoc`` work offline: every asset comes from the host itself."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI


def anonymous_client(app: FastAPI) -> httpx.AsyncClient:
    """A client without a key, at the server's root (the docs are not under /api/v1).

    Tests using it take ``client`` too: that fixture closes the app's bus and store.
    """
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops.test")


REFERENCED = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize(
    ("page", "bundle"),
    [
        ("/docs", "/docs-assets/swagger-ui-bundle.js"),
        ("/redoc", "/docs-assets/redoc.standalone.js"),
    ],
)
async def test_docs_pages_reference_only_local_assets_that_answer(
    app: FastAPI, client: httpx.AsyncClient, page: str, bundle: str
) -> None:
    async with anonymous_client(app) as anonymous:
        response = await anonymous.get(page)
        assert response.status_code == 200
        assert "http://" not in response.text
        assert "https://" not in response.text
        urls = set(REFERENCED.findall(response.text))
        assert {bundle, "/openapi.json", "/docs-assets/favicon.png"} <= urls
        for url in urls:
            assert url.startswith("/"), url
            asset = await anonymous.get(url)
            assert asset.status_code == 200, url
        css = await anonymous.get("/docs-assets/swagger-ui.css")
        js = await anonymous.get(bundle)
    assert css.headers["content-type"].startswith("text/css")
    assert "javascript" in js.headers["content-type"]
    assert len(js.content) > 100_000


async def test_an_unknown_asset_is_a_404_not_a_500(app: FastAPI, client: httpx.AsyncClient) -> None:
    async with anonymous_client(app) as anonymous:
        missing = await anonymous.get("/docs-assets/nope.js")
        escape = await anonymous.get("/docs-assets/../../pyproject.toml")
    assert missing.status_code == 404
    assert escape.status_code == 404
