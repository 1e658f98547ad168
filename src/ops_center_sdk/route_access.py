"""Which plugin routes the host serves without an API key.

Through the host every route under ``/plugins/<id>/`` needs a valid API key,
unless it is declared public: ``@plugin.route("/status", public=True)`` in
the code, ``public: true`` on the route in plugin.yaml. The rule, per path
and method (:func:`public_flag`):

- declared in both places: public only when both say so. When they disagree
  the route needs a key, and ``ops-center-plugin validate`` reports the
  disagreement (``route-public``, an error);
- declared in one place only: that place decides;
- a key that is sent is checked all the same (401 when it is not valid).

A host learns what the code of a plugin process declares from the process's
OpenAPI document (the ``x-ops-center-public`` extension of each operation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .routes import PUBLIC_EXTENSION, RouteSpec

if TYPE_CHECKING:
    from .manifest import RouteEntry

_PARAMETER = re.compile(r"\{[^}]*\}")
_OPENAPI_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})


def public_flag(code: bool | None, manifest: bool | None) -> bool:
    """Whether a route is public, from what the code and plugin.yaml say (``None``: silent).

    >>> public_flag(True, None), public_flag(True, False), public_flag(None, None)
    (True, False, False)
    """
    declared = [flag for flag in (code, manifest) if flag is not None]
    return bool(declared) and all(declared)


@dataclass(frozen=True)
class RouteRule:
    """Routes at ``path`` (the full URL path, a FastAPI template) for ``methods``."""

    path: str
    methods: tuple[str, ...]
    public: bool

    def describe(self) -> dict[str, Any]:
        """``{"path", "methods", "public"}``, as the host's plugin info lists it."""
        return {"path": self.path, "methods": list(self.methods), "public": self.public}


class RouteAccess:
    """The public routes of one plugin, matched by method and URL path.

    >>> access = RouteAccess([RouteRule("/plugins/p/status", ("GET",), True)])
    >>> access.is_public("GET", "/plugins/p/status"), access.is_public("GET", "/plugins/p/x")
    (True, False)
    """

    def __init__(self, rules: Iterable[RouteRule] = ()) -> None:
        from starlette.routing import compile_path

        self.rules = tuple(rules)
        compiled = [(compile_path(r.path)[0], frozenset(r.methods), r.public) for r in self.rules]
        self._public = [(regex, methods) for regex, methods, public in compiled if public]
        self._private = [(regex, methods) for regex, methods, public in compiled if not public]

    def is_public(self, method: str, path: str) -> bool:
        """True when a public route serves ``method`` at ``path`` (HEAD goes with GET)."""
        return _matches(self._public, method, path)

    def is_private(self, method: str, path: str) -> bool:
        """True when a route that needs a key serves ``method`` at ``path``."""
        return _matches(self._private, method, path) and not self.is_public(method, path)

    def describe(self) -> list[dict[str, Any]]:
        """Every rule as ``{"path", "methods", "public"}``."""
        return [rule.describe() for rule in self.rules]


_Compiled = Sequence[tuple[re.Pattern[str], frozenset[str]]]


def _matches(routes: _Compiled, method: str, path: str) -> bool:
    if not routes:
        return False
    wanted = {method, "GET"} if method == "HEAD" else {method}
    return any(
        not wanted.isdisjoint(methods) and regex.match(path) is not None
        for regex, methods in routes
    )


def manifest_flag(routes: Sequence[RouteEntry], path: str, method: str) -> bool | None:
    """What plugin.yaml says of ``method`` ``path`` (relative, ``/status``); ``None``: nothing."""
    shape = _PARAMETER.sub("{}", path)
    for route in routes:
        if method in route.methods and _PARAMETER.sub("{}", route.path) == shape:
            return route.public
    return None


def _split(
    path: str,
    methods: Iterable[str],
    code: Mapping[str, bool | None],
    manifest: Sequence[RouteEntry],
    prefix: str,
) -> list[RouteRule]:
    """``path``'s rules: its public methods, then the others (each rule only if not empty)."""
    flags = {m: public_flag(code.get(m), manifest_flag(manifest, path, m)) for m in methods}
    public = tuple(m for m, flag in flags.items() if flag)
    private = tuple(m for m, flag in flags.items() if not flag)
    return [
        RouteRule(prefix + path, chosen, is_public)
        for chosen, is_public in ((public, True), (private, False))
        if chosen
    ]


def rules_from_code(
    prefix: str, specs: Sequence[RouteSpec], manifest: Sequence[RouteEntry]
) -> list[RouteRule]:
    """The rules of routes declared with ``@plugin.route`` (a plugin in the host's process)."""
    rules: list[RouteRule] = []
    for spec in specs:
        code = dict.fromkeys(spec.methods, spec.public)
        rules += _split(spec.path, spec.methods, code, manifest, prefix)
    return rules


def rules_from_openapi(
    prefix: str, paths: Mapping[str, Any], manifest: Sequence[RouteEntry]
) -> list[RouteRule]:
    """The rules of a plugin process's routes, from the ``paths`` of its OpenAPI document."""
    rules: list[RouteRule] = []
    for full_path, operations in paths.items():
        if not isinstance(operations, Mapping) or not full_path.startswith(prefix):
            continue
        path = full_path[len(prefix) :] or "/"
        code: dict[str, bool | None] = {}
        for name, operation in operations.items():
            if name.lower() in _OPENAPI_METHODS:
                marked = isinstance(operation, Mapping) and operation.get(PUBLIC_EXTENSION)
                code[name.upper()] = marked is True
        rules += _split(path, sorted(code), code, manifest, prefix)
    return rules


def rules_from_manifest(prefix: str, manifest: Sequence[RouteEntry]) -> list[RouteRule]:
    """The rules plugin.yaml alone gives (a plugin process whose routes are not known yet)."""
    rules: list[RouteRule] = []
    for route in manifest:
        rules += _split(route.path, route.methods, {}, manifest, prefix)
    return rules
