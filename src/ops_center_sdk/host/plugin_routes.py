"""Plugin routes on the host app: added when a plugin is enabled, removed when it stops.

A plugin's router (``plugin.router()``, its routes under ``/plugins/<id>``)
is included into the host app itself, so a plugin route costs one app's
middleware, as ``plugin.create_app()`` served alone does. The host keeps the
route entries it added per plugin and takes exactly those out again.

A request under ``/plugins/`` that no route matches gets a precise answer
instead of a bare 404, from ``explain(plugin_id)``: no such plugin (404), the
plugin is disabled or failed (503), or the plugin has no such route (404).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..routes import route_prefix
from .errors import HostError, NotFound

#: Why no route answered a path under ``/plugins/<id>``; ``None``: the plugin runs.
Explain = Callable[[str], HostError | None]


class PluginRoutes:
    """The route table of the plugins, on the host ``app``.

    >>> routes = PluginRoutes(app, explain=host.route_problem)
    >>> routes.mount("my-plugin", plugin.router())
    >>> routes.unmount("my-plugin")
    """

    def __init__(self, app: FastAPI, explain: Explain) -> None:
        self._app = app
        self._explain = explain
        self._mounted: dict[str, list[BaseRoute]] = {}
        self._fallback: ASGIApp = app.router.default
        app.router.default = self._not_found

    def mount(self, plugin_id: str, router: APIRouter) -> None:
        """Serve ``router`` (replacing what ``plugin_id`` had mounted)."""
        self.unmount(plugin_id)
        routes = self._app.router.routes
        before = {id(route) for route in routes}
        self._app.include_router(router)
        self._mounted[plugin_id] = [route for route in routes if id(route) not in before]
        self._app.openapi_schema = None

    def unmount(self, plugin_id: str) -> None:
        """Stop serving ``plugin_id``'s routes; requests in flight finish."""
        added = self._mounted.pop(plugin_id, None)
        if not added:
            return
        gone = {id(route) for route in added}
        self._app.router.routes[:] = [r for r in self._app.router.routes if id(r) not in gone]
        self._app.openapi_schema = None

    def is_mounted(self, plugin_id: str) -> bool:
        return plugin_id in self._mounted

    def close(self) -> None:
        """Unmount everything and give the app its own not-found handler back."""
        for plugin_id in list(self._mounted):
            self.unmount(plugin_id)
        self._app.router.default = self._fallback

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        prefix = route_prefix("")
        if scope["type"] == "http" and path.startswith(prefix):
            plugin_id = path[len(prefix) :].split("/", 1)[0]
            if plugin_id:
                problem = self._explain(plugin_id)
                if problem is not None:
                    raise problem
                raise NotFound(
                    f"plugin {plugin_id!r} has no route {scope.get('method', 'GET')} {path}"
                )
        await self._fallback(scope, receive, send)
