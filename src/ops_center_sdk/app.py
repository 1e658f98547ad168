"""``plugin.create_app()``: the FastAPI app that serves one plugin.

Run on its own (``uvicorn main:app``) the app owns the plugin's lifecycle:
it installs the plugin on its first start ever (remembered in storage),
enables it at startup and disables it at shutdown. Run by a host
(``OPS_CENTER_MANAGED=1``), it leaves the lifecycle to the host's calls on
the ``/_ops/`` endpoints (:mod:`ops_center_sdk.protocol`).

Either way the app checks the host's signed caller headers on each request
and keeps the verified caller for :func:`~ops_center_sdk.caller.get_caller`
(:class:`~ops_center_sdk.caller.CallerCheck`). Its
``@app.on_event("startup"/"shutdown")`` handlers and a ``lifespan`` given
to ``create_app`` run when the plugin is enabled and disabled
(:mod:`ops_center_sdk.app_events`). The app also answers ``GET /health``
(:mod:`ops_center_sdk.liveness`) and serves its docs offline
(:mod:`ops_center_sdk.docs_pages`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from .caller import CallerCheck
from .docs_pages import install_docs_pages
from .liveness import (
    LIVENESS_PATH,
    LIVENESS_ROUTE_NAME,
    declares_own_health,
    is_liveness_route,
    liveness_endpoint,
)
from .logger import configure_logging
from .protocol import ProtocolEndpoints, is_managed
from .route_access import RouteAccess, rules_from_code
from .routes import RouteSpec, build_router, route_prefix

if TYPE_CHECKING:
    from .app_events import Lifespan
    from .plugin import Plugin


def create_app(plugin: Plugin, *, lifespan: Lifespan | None = None) -> FastAPI:
    """Build the app: the plugin's routes under ``/plugins/<id>`` and its lifecycle."""

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        _mount_new_routes(app, plugin)
        if is_managed():
            # The host drives install/enable/disable through /_ops/lifecycle.
            try:
                yield
            finally:
                await plugin.halt()
            return
        await plugin.start()
        try:
            yield
        finally:
            await plugin.stop()

    metadata = plugin.metadata
    prefix = route_prefix(plugin.id)
    app = FastAPI(
        title=metadata.name,
        version=metadata.version,
        description=metadata.description or "",
        lifespan=app_lifespan,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.plugin = plugin
    protocol = ProtocolEndpoints(plugin)
    app.state.protocol = protocol
    app.router.routes.extend(protocol.routes())
    app.add_middleware(
        CallerCheck, secret=lambda: protocol.secret, required=_caller_required(plugin, protocol)
    )
    app.state.mounted_routes = []
    _mount_new_routes(app, plugin)
    # After the plugin's routes, so that their requests are matched first.
    app.add_api_route(
        LIVENESS_PATH,
        liveness_endpoint(plugin),
        methods=["GET"],
        include_in_schema=False,
        name=LIVENESS_ROUTE_NAME,
    )
    install_docs_pages(app, prefix)
    plugin.add_app_events(app, lifespan)
    return app


def _mount_new_routes(app: FastAPI, plugin: Plugin) -> None:
    """Include the routes declared since the last call (routes may follow create_app).

    ``/plugins/<id>/health`` answers liveness unless the plugin declares that
    route itself; its liveness route is kept last, so a route declared later wins.
    """
    mounted: list[RouteSpec] = app.state.mounted_routes
    fresh = [spec for spec in plugin.routes if spec not in mounted]
    if fresh or not mounted:
        routes = app.router.routes
        routes[:] = [
            route
            for route in routes
            if not (is_liveness_route(route) and getattr(route, "path", "") != LIVENESS_PATH)
        ]
        if fresh:
            app.include_router(build_router(plugin.id, fresh))
            mounted.extend(fresh)
        if not declares_own_health(mounted):
            app.add_api_route(
                route_prefix(plugin.id) + LIVENESS_PATH,
                liveness_endpoint(plugin),
                methods=["GET"],
                include_in_schema=False,
                name=LIVENESS_ROUTE_NAME,
            )
        app.openapi_schema = None


def _caller_required(plugin: Plugin, protocol: ProtocolEndpoints) -> Callable[[str, str], bool]:
    """Whether a request must come with the host's caller: managed, with a secret, not public."""
    built: list[tuple[int, RouteAccess]] = []

    def access() -> RouteAccess:
        declared = len(plugin.routes)
        if not built or built[0][0] != declared:
            rules = rules_from_code(route_prefix(plugin.id), plugin.routes, plugin.manifest.routes)
            built[:] = [(declared, RouteAccess(rules))]
        return built[0][1]

    def required(method: str, path: str) -> bool:
        return is_managed() and bool(protocol.secret) and access().is_private(method, path)

    return required
