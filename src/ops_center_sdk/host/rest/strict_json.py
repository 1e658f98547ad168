"""Request bodies must be real JSON: no ``NaN``, ``Infinity``, huge numbers or lone surrogates.

Python's ``json`` module accepts ``NaN`` and ``Infinity`` and turns ``1e400``
into infinity; stored, such a value would be sent on to plugins and webhooks
as text that is not JSON. It also accepts ``"\\ud800"``, a lone surrogate:
a string no UTF-8 text can hold, so the store, the answer (an error message
naming the key) and every plugin would fail on it. Every host route parses its
body with this class, so such a body is refused as invalid JSON (400) like
any other.
"""

from __future__ import annotations

import json
import math
import re
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


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate(value: Any) -> str | None:
    """The first string (key or value) in ``value`` that UTF-8 cannot encode, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return item
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _refuse_lone_surrogates(body: bytes, value: Any) -> None:
    # Only a \uD800-\uDFFF escape can make one: raw UTF-8 bytes cannot.
    if _SURROGATE_ESCAPE.search(body) is None:
        return
    text = _lone_surrogate(value)
    if text is None:
        return
    char = next(c for c in text if 0xD800 <= ord(c) <= 0xDFFF)
    escape = f"\\u{ord(char):04x}"
    where = body.lower().find(escape.encode("ascii"))
    raise json.JSONDecodeError(
        f"a string holds a lone surrogate ({escape}), which is not Unicode text",
        "",
        max(where, 0),
    )


class StrictJSONRequest(Request):
    """A request whose ``json()`` refuses non-finite numbers and lone surrogates."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
            _refuse_lone_surrogates(body, value)
            self._json = value
        return self._json


class StrictJSONRoute(APIRoute):
    """The route class of every host router: bodies parsed by :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
