"""Request bodies must be real JSON: no ``NaN``, ``Infinity`` or numbers that overflow.

Python's ``json`` module accepts ``NaN`` and ``Infinity`` and turns ``1e400``
into infinity; stored, such a value would be sent on to plugins and webhooks
as text that is not JSON. Every host route parses its body with this class,
so such a body is refused as invalid JSON (400) like any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"the number {text} is too large for JSON", text, 0)
    return value


class StrictJSONRequest(Request):
    """A request whose ``json()`` refuses non-finite numbers."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = json.loads(
                body, parse_constant=_refuse_constant, parse_float=_finite_float
            )
        return self._json


class StrictJSONRoute(APIRoute):
    """The route class of every host router: bodies parsed by :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
