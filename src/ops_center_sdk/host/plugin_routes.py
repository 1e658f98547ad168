"""Plugin routes on the host app: served while a plugin is enabled, gone when it stops.

One route sits first in the host app's route table and takes every request
under ``/plugins/``: it finds the plugin by the path's next segment (a dict
lookup) and hands the request to that plugin's router (``plugin.router()``,
its routes under ``/plugins/<id>``). The REST API's own routes are never
walked for a plugin route, so a plugin route served by the host costs about
what it costs served alone by ``plugin.create_app()``; and a request under
``/plugins/`` that no route matches gets a precise answer: no such plugin
(404), the plugin is disabled or failed (503, from ``explain``), or the
plugin has no such route (404; 405 for a known path with another method).

Before any of that the request passes the key check (:mod:`.route_guard`):
a valid API key is needed unless the route is public (the plugin's
:class:`~ops_center_sdk.route_access.RouteAccess` says which are), and the
caller's credentials are taken off the request, replaced by who called.

The plugin's router is also included in the app, at the end, only so that
``/docs`` and ``/openapi.json`` list its routes; requests never reach it there.
A plugin running as its own process is mounted as an ASGI app instead (the
proxy to its process); its routes are documented by its own app, at
``/plugins/<id>/docs``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ..liveness import LIVENESS_PATH
from ..route_access import RouteAccess
from ..routes import route_prefix
from .auth import APIKeys
from .errors import HostError, NotFound
from .route_guard import guard

#: Why no route answers a path under ``/plugins/<id>``; ``None``: the plugin runs.
Explain = Callable[[str], HostError | None]
#: The plugin's public routes as they are now (a plugin process learns its own late).
Access = Callable[[], RouteAccess]

_NO_ACCESS = RouteAccess()

_PREFIX = route_prefix("")
_READ_METHODS = frozenset({"GET", "HEAD"})


def liveness_path(plugin_id: str) -> str:
    """``/plugins/<id>/health``: where the host answers a plugin's liveness, keyless."""
    return route_prefix(plugin_id) + LIVENESS_PATH


def is_keyless(plugin_id: str, access: RouteAccess, method: str, path: str) -> bool:
    """Whether ``method path`` of ``plugin_id`` is served without a key.

    A route the plugin declared public is, and so is the SDK's liveness
    (``GET /plugins/<id>/health``) unless the plugin declares that route
    itself: then its own declaration decides.
    """
    if access.is_public(method, path):
        return True
    return (
        method in _READ_METHODS
        and path == liveness_path(plugin_id)
        and not access.is_private(method, path)
    )


class PluginRoutes:
    """The route table of the plugins, on the host ``app``.

    >>> routes = PluginRoutes(app, explain=host.route_problem)
    >>> routes.mount("my-plugin", plugin.router(), access=lambda: access)
    >>> routes.unmount("my-plugin")

    The API keys checked are ``app.state.keys`` (:class:`~.auth.APIKeys`).
    """

    def __init__(self, app: FastAPI, explain: Explain) -> None:
        self._app = app
        self._routers: dict[str, tuple[ASGIApp, Access]] = {}
        self._listed: dict[str, list[BaseRoute]] = {}
        self._dispatch = _PluginDispatch(self._routers, explain, lambda: app.state.keys)
        app.router.routes.insert(0, self._dispatch)

    def mount(
        self, plugin_id: str, router: APIRouter | ASGIApp, access: Access = lambda: _NO_ACCESS
    ) -> None:
        """Serve ``router`` (replacing what ``plugin_id`` had mounted).

        ``access()`` tells which of its routes are public (by default none:
        every request needs a key). An ``APIRouter`` is listed in the host's
        ``/docs`` too; any other ASGI app (a proxy to a plugin process) gets
        the requests only.
        """
        self.unmount(plugin_id)
        self._routers[plugin_id] = (router, access)
        if not isinstance(router, APIRouter):
            return
        router.default = _no_route
        routes = self._app.router.routes
        before = {id(route) for route in routes}
        self._app.include_router(router)
        self._listed[plugin_id] = [route for route in routes if id(route) not in before]
        self._app.openapi_schema = None

    def unmount(self, plugin_id: str) -> None:
        """Stop serving ``plugin_id``'s routes; requests in flight finish."""
        self._routers.pop(plugin_id, None)
        listed = self._listed.pop(plugin_id, None)
        if listed:
            gone = {id(route) for route in listed}
            self._app.router.routes[:] = [r for r in self._app.router.routes if id(r) not in gone]
            self._app.openapi_schema = None

    def close(self) -> None:
        """Unmount every plugin and leave the app's route table as it was."""
        for plugin_id in list(self._routers):
            self.unmount(plugin_id)
        routes = self._app.router.routes
        if self._dispatch in routes:
            routes.remove(self._dispatch)


class _PluginDispatch(BaseRoute):
    """The one route in front: every path under ``/plugins/``, by plugin id."""

    def __init__(
        self,
        routers: dict[str, tuple[ASGIApp, Access]],
        explain: Explain,
        keys: Callable[[], APIKeys],
    ) -> None:
        self._routers = routers
        self._explain = explain
        self._keys = keys

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIX):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        plugin_id = path[len(_PREFIX) :].split("/", 1)[0]
        mounted = self._routers.get(plugin_id)
        # Nothing about the plugin is told before the key is checked, unless
        # the route is public, or is the liveness probe: a probe must tell a
        # stopped plugin (503) from a running one without a key.
        access = mounted[1]() if mounted is not None else _NO_ACCESS
        public = is_keyless(plugin_id, access, scope["method"], path)
        guard(scope, self._keys(), public=public)
        if mounted is None:
            raise self._explain(plugin_id) or NotFound(f"no plugin {plugin_id!r} serves routes")
        await mounted[0](scope, receive, send)


async def _no_route(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope["path"]
    plugin_id = path[len(_PREFIX) :].split("/", 1)[0]
    raise NotFound(f"plugin {plugin_id!r} has no route {scope.get('method', 'GET')} {path}")
