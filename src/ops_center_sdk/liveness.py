"""``GET /health``: the plugin app's unauthenticated liveness answer.

For load balancers and container probes: ``{"status": "ok", "plugin": <id>,
"version": <version>}`` and nothing else (what the hooks, tasks and failures
are stays behind the signed ``GET /_ops/health``). The plugin app answers it
at ``/health`` and at ``/plugins/<id>/health``; through the host it is
``/plugins/<id>/health``, served without an API key. A plugin that declares
its own ``GET /health`` route keeps it at ``/plugins/<id>/health`` (that one
is the plugin's route like any other); ``/health`` stays the liveness answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plugin import Plugin
    from .routes import RouteSpec

#: The liveness path: at the app's root, and below ``/plugins/<id>``.
LIVENESS_PATH = "/health"
#: The name of the liveness routes (how :func:`is_liveness_route` knows them).
LIVENESS_ROUTE_NAME = "ops_center_liveness"


def liveness_body(plugin: Plugin) -> dict[str, Any]:
    """The whole liveness document: status, plugin id, version."""
    return {"status": "ok", "plugin": plugin.id, "version": plugin.metadata.version}


def liveness_endpoint(plugin: Plugin) -> Callable[[], Any]:
    """A FastAPI endpoint answering :func:`liveness_body`."""

    async def health() -> dict[str, Any]:
        return liveness_body(plugin)

    return health


def declares_own_health(routes: Sequence[RouteSpec]) -> bool:
    """Whether the plugin serves ``GET /health`` itself (then it keeps that route)."""
    return any(spec.path == LIVENESS_PATH and "GET" in spec.methods for spec in routes)


def is_liveness_route(route: Any) -> bool:
    """Whether ``route`` (in a route table) is a liveness route this module added."""
    return getattr(route, "name", None) == LIVENESS_ROUTE_NAME
