"""Driving an ASGI app with requests no HTTP client would send: raw header bytes, endless bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    #: ``http.request`` messages the app pulled from the client.
    chunks_read: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RawRequest:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: The body's chunks, pulled one per ``receive``; may be endless.
    chunks: Iterator[bytes] = field(default_factory=lambda: iter([b""]))
    query: bytes = b""
    #: The client goes away once its chunks are sent, before saying the body is complete.
    disconnects: bool = False

    async def send_to(self, app: ASGIApp) -> Answer:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query,
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        read = 0
        pending = next(self.chunks, None)
        started: dict[str, Any] = {}
        body = bytearray()

        async def receive() -> Message:
            nonlocal read, pending
            if pending is None:
                return {"type": "http.disconnect"}
            chunk, pending = pending, next(self.chunks, None)
            read += 1
            more = pending is not None or self.disconnects
            return {"type": "http.request", "body": chunk, "more_body": more}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await app(scope, receive, send)
        headers = {bytes(k).lower(): bytes(v) for k, v in started.get("headers", [])}
        return Answer(int(started["status"]), headers, bytes(body), read)


def endless(chunk: bytes) -> Iterator[bytes]:
    """A body that never ends."""
    while True:
        yield chunk
