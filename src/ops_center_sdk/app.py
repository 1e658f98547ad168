"""``plugin.create_app()``: the FastAPI app that serves one plugin.

Run on its own (``uvicorn main:app``) the app owns the plugin's lifecycle:
it installs the plugin on its first start ever (remembered in storage),
enables it at startup and disables it at shutdown. Run by a host
(``OPS_CENTER_MANAGED=1``), it leaves the lifecycle to the host's calls on
the ``/_ops/`` endpoints (:mod:`ops_center_sdk.protocol`).

Either way the app checks the host's signed caller headers on each request
and keeps the verified caller for :func:`~ops_center_sdk.caller.get_caller`
(:class:`~ops_center_sdk.caller.CallerCheck`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from .caller import CallerCheck
from .logger import configure_logging
from .protocol import ProtocolEndpoints, is_managed
from .route_access import RouteAccess, rules_from_code
from .routes import RouteSpec, build_router, route_prefix

if TYPE_CHECKING:
    from .plugin import Plugin


def create_app(plugin: Plugin) -> FastAPI:
    """Build the app: the plugin's routes under ``/plugins/<id>`` and its lifecycle."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    app = FastAPI(
        title=metadata.name,
        version=metadata.version,
        description=metadata.description or "",
        lifespan=lifespan,
        openapi_url=f"/plugins/{plugin.id}/openapi.json",
        docs_url=f"/plugins/{plugin.id}/docs",
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
    return app


def _mount_new_routes(app: FastAPI, plugin: Plugin) -> None:
    """Include the routes declared since the last call (routes may follow create_app)."""
    mounted: list[RouteSpec] = app.state.mounted_routes
    fresh = [spec for spec in plugin.routes if spec not in mounted]
    if fresh:
        app.include_router(build_router(plugin.id, fresh))
        mounted.extend(fresh)
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
