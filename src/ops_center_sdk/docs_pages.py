"""``/docs`` and ``/redoc`` that work offline: Swagger UI and ReDoc served from the package.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so without
internet they show nothing. These pages load the same assets from the
installed ``fastapi-offline`` distribution (MIT; it ships Swagger UI,
Apache-2.0, and ReDoc, MIT), served under ``<prefix>/docs-assets/``. The
host app has them at ``/docs``, ``/redoc`` and ``/docs-assets/``; a plugin
app at ``/plugins/<id>/docs``, ``/plugins/<id>/redoc`` and
``/plugins/<id>/docs-assets/`` (so they work through the host's proxy too).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

#: Where the assets are served, below the docs' prefix.
ASSETS_PATH = "/docs-assets"
#: The files served there: Swagger UI's bundle and stylesheet, ReDoc's bundle, a favicon.
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_folder() -> Path:
    """The folder of the installed Swagger UI and ReDoc assets (never imported, only read)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the docs pages need the package fastapi-offline (a dependency of "
            "ops-center-plugin-sdk): pip install fastapi-offline"
        )
    return Path(spec.origin).parent / "static"


def install_docs_pages(app: FastAPI, prefix: str = "") -> None:
    """Serve ``<prefix>/docs``, ``<prefix>/redoc`` and their assets on ``app``.

    ``app`` is made with ``docs_url=None, redoc_url=None``; its ``openapi_url``
    is what the pages show.

    >>> app = FastAPI(docs_url=None, redoc_url=None)
    >>> install_docs_pages(app)  # /docs, /redoc, /docs-assets/swagger-ui-bundle.js ...
    """
    assets = prefix + ASSETS_PATH
    docs_url, redoc_url = prefix + "/docs", prefix + "/redoc"
    oauth2_redirect_url = docs_url + "/oauth2-redirect"
    app.mount(assets, StaticFiles(directory=assets_folder()), name=f"docs-assets{prefix}")

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "")
        return f"{root}{app.openapi_url}", f"{root}{assets}"

    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, base = urls(request)
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}/swagger-ui.css",
            swagger_favicon_url=f"{base}/favicon.png",
            oauth2_redirect_url=oauth2_redirect_url,
            # Swagger UI would send the document to an online validator.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, base = urls(request)
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}/redoc.standalone.js",
            redoc_favicon_url=f"{base}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        oauth2_redirect_url, oauth2_redirect, methods=["GET"], include_in_schema=False
    )
    app.add_api_route(redoc_url, redoc, methods=["GET"], include_in_schema=False)
