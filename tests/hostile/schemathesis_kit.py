"""The served host, a loopback webhook receiver and the body rewrites of the schemathesis run.

The host runs as ``ops-center-plugin dev`` serves it (uvicorn on a real
127.0.0.1 socket). A receiver on 127.0.0.1 stands in for every URL a fuzzed
body names, and an install's ``path`` is kept inside the run's temp folder,
so nothing the run makes the host do reaches beyond this machine's tmp.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Receiver:
    """A loopback HTTP server answering 200 to every request, and what it was sent."""

    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def loopback_receiver() -> Iterator[Receiver]:
    """The receiver on a free 127.0.0.1 port, stopped on exit."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, 1 << 20))
            receiver.requests.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    receiver.url = f"http://{host!s}:{port}/hook"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def is_web_url(value: str) -> bool:
    """Whether the host could take ``value`` for an http(s) URL to call."""
    try:
        return urlsplit(value.strip()).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def to_loopback(value: Any, receiver_url: str) -> Any:
    """``value`` (a JSON document) with every http(s) URL in it replaced by ``receiver_url``."""
    if isinstance(value, str):
        return receiver_url if is_web_url(value) else value
    if isinstance(value, list):
        return [to_loopback(item, receiver_url) for item in value]
    if isinstance(value, dict):
        return {key: to_loopback(item, receiver_url) for key, item in value.items()}
    return value


def inside(path: str) -> str:
    """A fuzzed folder path made relative and kept below the current folder.

    Absolute paths, ``~`` (a home folder) and ``..`` would reach outside the
    run's temp folder; everything else about the text (odd characters, NUL,
    length) is kept for the host to refuse.
    """
    parts = [part for part in PurePosixPath(path).parts if part not in ("/", "..", "//")]
    relative = "/".join(parts) or "."
    return f"_{relative}" if relative.startswith("~") else relative


def confine(body: Any, receiver_url: str, *, install: bool) -> Any:
    """A fuzzed JSON body with its URLs on the receiver and (for an install) its path inside."""
    body = to_loopback(body, receiver_url)
    if install and isinstance(body, dict) and isinstance(body.get("path"), str):
        body = {**body, "path": inside(body["path"])}
    return body


def rewrite_request(request: dict[str, Any], receiver_url: str, *, install: bool) -> None:
    """Apply :func:`confine` to a ``requests`` call's body, JSON or raw text that parses as JSON."""
    if "json" in request:
        request["json"] = confine(request["json"], receiver_url, install=install)
        return
    raw = request.get("data")
    if isinstance(raw, bytes | str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return
        request["data"] = json.dumps(confine(parsed, receiver_url, install=install)).encode()
