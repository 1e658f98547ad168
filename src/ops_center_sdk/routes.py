"""Plugin routes: what ``@plugin.route`` records and how it becomes a FastAPI router.

A route declared as ``/status`` is served at ``/plugins/{plugin_id}/status``.
Handlers follow FastAPI's rules for path, query and body parameters and may
return a dict, a Pydantic model, a ``Response``, or a ``(body, status_code)``
tuple. Through the host a route needs an API key unless it is declared
``public`` (:mod:`ops_center_sdk.route_access`).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import OpsCenterError

if TYPE_CHECKING:
    from fastapi import APIRouter

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_PATH = re.compile(r"^/[A-Za-z0-9._~\-/{}:]*$")
_PARAMETER = re.compile(r"\{[^}]*\}")
#: The OpenAPI extension marking a route declared ``public=True``: how a host
#: learns it from a plugin process (its ``openapi.json``).
PUBLIC_EXTENSION = "x-ops-center-public"


class RouteError(OpsCenterError, ValueError):
    """A route declaration that cannot be served (bad path, method or handler)."""


@dataclass(frozen=True)
class RouteSpec:
    """One ``@plugin.route`` declaration."""

    path: str
    methods: tuple[str, ...]
    handler: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)
    #: Served through the host without an API key.
    public: bool = False

    @property
    def handler_name(self) -> str:
        return getattr(self.handler, "__name__", repr(self.handler))


def make_route(
    path: str,
    methods: Sequence[str] | None,
    handler: Callable[..., Any],
    options: dict[str, Any],
    *,
    public: bool = False,
) -> RouteSpec:
    """Check a declaration and build its :class:`RouteSpec`; errors name the handler."""
    where = f"route {path!r} (handler {getattr(handler, '__qualname__', handler)!r})"
    if not isinstance(path, str) or not path.startswith("/"):
        raise RouteError(f"{where}: the path must start with '/', e.g. '/status'")
    if not _PATH.match(path):
        raise RouteError(f"{where}: the path has characters a URL path cannot hold")
    if path.startswith("/_ops"):
        raise RouteError(f"{where}: paths under '/_ops' are reserved for the host protocol")
    if not callable(handler):
        raise RouteError(f"{where}: the handler is not callable")
    if isinstance(methods, str):  # methods="POST", as plugin.yaml also accepts
        methods = [methods]
    if methods is not None and any(not isinstance(m, str) for m in methods):
        raise RouteError(f"{where}: methods must be names such as ['GET', 'POST'], got {methods!r}")
    chosen = tuple(m.upper() for m in (methods or ["GET"]))
    unknown = [m for m in chosen if m not in HTTP_METHODS]
    if unknown:
        raise RouteError(
            f"{where}: unknown HTTP method(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(HTTP_METHODS))}"
        )
    if not isinstance(public, bool):
        raise RouteError(f"{where}: public must be True or False, got {public!r}")
    return RouteSpec(path, chosen, handler, dict(options), public)


def check_no_duplicate(spec: RouteSpec, declared: Sequence[RouteSpec]) -> None:
    """Refuse a route whose path and a method are already served by another declaration.

    FastAPI would serve the first and never call the second. Paths that differ
    only in parameter names (``/devices/{id}``, ``/devices/{device_id}``) match
    the same URLs, so they count as the same path.
    """
    shape = _PARAMETER.sub("{}", spec.path)
    for other in declared:
        common = [m for m in spec.methods if m in other.methods]
        if common and _PARAMETER.sub("{}", other.path) == shape:
            raise RouteError(
                f"route {spec.path!r} (handler {spec.handler_name!r}): {', '.join(common)} "
                f"{other.path!r} is already served by handler {other.handler_name!r}"
            )


def adapt_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler so a ``(body, status_code)`` tuple becomes a JSON response.

    The wrapper keeps the handler's signature (``functools.wraps``), so FastAPI
    reads the same parameters and return annotation as for the bare function.
    """
    from fastapi.encoders import jsonable_encoder
    from starlette.responses import JSONResponse, Response

    def convert(result: Any) -> Any:
        if (
            type(result) is tuple
            and len(result) == 2
            and isinstance(result[1], int)
            and not isinstance(result[1], bool)
        ):
            body, status = result
            if isinstance(body, Response):
                body.status_code = status
                return body
            return JSONResponse(jsonable_encoder(body), status_code=status)
        return result

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_endpoint(*args: Any, **kwargs: Any) -> Any:
            return convert(await handler(*args, **kwargs))

        return async_endpoint

    @functools.wraps(handler)
    def sync_endpoint(*args: Any, **kwargs: Any) -> Any:
        return convert(handler(*args, **kwargs))

    return sync_endpoint


def route_prefix(plugin_id: str) -> str:
    """Where a plugin's routes live: ``/plugins/<id>``."""
    return f"/plugins/{plugin_id}"


def build_router(plugin_id: str, routes: Sequence[RouteSpec]) -> APIRouter:
    """A FastAPI router serving ``routes`` under ``/plugins/<plugin_id>``."""
    from fastapi import APIRouter

    router = APIRouter(prefix=route_prefix(plugin_id), tags=[plugin_id])
    for spec in routes:
        options = {"name": spec.handler_name, **spec.options}
        if spec.public:
            extra = options.get("openapi_extra") or {}
            options["openapi_extra"] = {**extra, PUBLIC_EXTENSION: True}
        router.add_api_route(
            spec.path, adapt_handler(spec.handler), methods=list(spec.methods), **options
        )
    return router
