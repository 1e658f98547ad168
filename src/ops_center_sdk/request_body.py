"""Reading a request body with a limit, before anything else is done with the request.

A body is refused without reading a byte when its ``Content-Length`` is over
the limit, and a body sent without one (chunked) is counted as it streams in
and refused as soon as it passes the limit: never more than ``limit`` bytes
are held, whatever the sender claims or sends.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from .errors import OpsCenterError


class BodyTooLarge(OpsCenterError):
    """A request body over the limit; ``declared`` is its ``Content-Length`` if it had one."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
        super().__init__(f"the request body is {size}, over the limit of {limit} bytes")


class BodyIncomplete(OpsCenterError):
    """The client went away before the whole body arrived."""


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` as a number, or None when absent or not plain digits."""
    values = request.headers.getlist("content-length")
    if len(values) != 1:
        return None
    value = values[0].strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; :class:`BodyTooLarge` past that."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    received = bytearray()
    try:
        async for chunk in request.stream():
            if len(received) + len(chunk) > limit:
                raise BodyTooLarge(limit)
            received += chunk
    except ClientDisconnect:
        raise BodyIncomplete("the client disconnected before the whole body arrived") from None
    return bytes(received)
