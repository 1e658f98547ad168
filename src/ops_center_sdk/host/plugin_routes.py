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

The plugin's router is also included in the app, at the end, only so that
``/docs`` and ``/openapi.json`` list its routes; requests never reach it there.
A plugin running as its own process is mounted as an ASGI app instead (the
proxy to its process); its routes are documented by its own app, at
``/plugins/<id>/docs``.

Public paths: ``GET /plugins/<id>/health``, the SDK's liveness answer
(:mod:`ops_center_sdk.liveness`), is the one plugin path served without the
check that ``authorize`` makes (an API key), so load balancers and probes
reach it. A plugin that declares its own ``GET /health`` route is not
exempted: that route is the plugin's, checked like the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ..liveness import LIVENESS_PATH
from ..routes import route_prefix
from .errors import HostError, NotFound

#: Why no route answers a path under ``/plugins/<id>``; ``None``: the plugin runs.
Explain = Callable[[str], HostError | None]

#: Checks a request to a plugin route (raises the HostError refusing it); public paths skip it.
Authorize = Callable[[str, Scope], Awaitable[None]]

_PREFIX = route_prefix("")
_PUBLIC_METHODS = frozenset({"GET", "HEAD"})


def liveness_path(plugin_id: str) -> str:
    """``/plugins/<id>/health``: where the host answers a plugin's liveness, keyless."""
    return route_prefix(plugin_id) + LIVENESS_PATH


def public_paths(plugin_id: str, declared: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The paths of ``plugin_id`` served without ``authorize``: its liveness, unless
    ``declared`` (``route_paths()``: the plugin's own routes) has a ``GET`` there."""
    path = liveness_path(plugin_id)
    own = any(r.get("path") == path and "GET" in r.get("methods", ()) for r in declared)
    return frozenset() if own else frozenset({path})


class PluginRoutes:
    """The route table of the plugins, on the host ``app``.

    >>> routes = PluginRoutes(app, explain=host.route_problem)
    >>> routes.mount("my-plugin", plugin.router())
    >>> routes.unmount("my-plugin")
    """

    def __init__(self, app: FastAPI, explain: Explain, authorize: Authorize | None = None) -> None:
        self._app = app
        self._routers: dict[str, ASGIApp] = {}
        self._listed: dict[str, list[BaseRoute]] = {}
        self._public: dict[str, frozenset[str]] = {}
        self._dispatch = _PluginDispatch(self._routers, self._public, explain, authorize)
        app.router.routes.insert(0, self._dispatch)

    def mount(
        self,
        plugin_id: str,
        router: APIRouter | ASGIApp,
        public: Iterable[str] | None = None,
    ) -> None:
        """Serve ``router`` (replacing what ``plugin_id`` had mounted).

        An ``APIRouter`` is listed in the host's ``/docs`` too; any other
        ASGI app (a proxy to a plugin process) gets the requests only.
        ``public``: the paths served without ``authorize`` (by default the
        liveness path; see :func:`public_paths`).
        """
        self.unmount(plugin_id)
        self._routers[plugin_id] = router
        self._public[plugin_id] = frozenset(
            public if public is not None else {liveness_path(plugin_id)}
        )
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
        self._public.pop(plugin_id, None)
        listed = self._listed.pop(plugin_id, None)
        if listed:
            gone = {id(route) for route in listed}
            self._app.router.routes[:] = [r for r in self._app.router.routes if id(r) not in gone]
            self._app.openapi_schema = None

    def is_public(self, plugin_id: str, method: str, path: str) -> bool:
        """Whether a ``method`` request to ``path`` of ``plugin_id`` skips ``authorize``."""
        return method in _PUBLIC_METHODS and path in self._public.get(plugin_id, ())

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
        routers: dict[str, ASGIApp],
        public: dict[str, frozenset[str]],
        explain: Explain,
        authorize: Authorize | None,
    ) -> None:
        self._routers = routers
        self._public = public
        self._explain = explain
        self._authorize = authorize

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIX):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        plugin_id = scope["path"][len(_PREFIX) :].split("/", 1)[0]
        router = self._routers.get(plugin_id)
        if router is None:
            raise self._explain(plugin_id) or NotFound(f"no plugin {plugin_id!r} serves routes")
        if self._authorize is not None and not (
            scope.get("method") in _PUBLIC_METHODS
            and scope["path"] in self._public.get(plugin_id, ())
        ):
            await self._authorize(plugin_id, scope)
        await router(scope, receive, send)


async def _no_route(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope["path"]
    plugin_id = path[len(_PREFIX) :].split("/", 1)[0]
    raise NotFound(f"plugin {plugin_id!r} has no route {scope.get('method', 'GET')} {path}")
