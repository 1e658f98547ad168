"""Request body size limit, enforced before the body is read."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

#: Default largest request body the host accepts (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    It is an ``HTTPException`` so that FastAPI's body reader lets it through
    unchanged (it wraps other exceptions into a 400) and the error handlers
    answer it as a 413 in the one JSON shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413.

    A declared ``Content-Length`` over the limit is refused without reading
    anything; a body without one is counted as it streams in and refused as
    soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            message = f"the request body ({declared} bytes) is larger than the limit of {limit}"
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
