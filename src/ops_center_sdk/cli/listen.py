"""The listening socket of ``dev`` and ``serve``, opened before anything starts.

Binding first means a port already in use is a one-line error (exit 1)
before a plugin is installed or enabled, and ``--port 0`` picks a free port
whose number the printed URLs show.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp


class PortUnavailable(Exception):
    """The address cannot be listened on (in use, not this machine's, no permission)."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn would bind it), ready to serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "it is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {reason}; choose another with --port "
            "(--port 0 picks a free one)"
        ) from None
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` listens on (the one the system chose for port 0)."""
    return int(sock.getsockname()[1])


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Run ``app`` under uvicorn on ``sock`` until interrupted."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
    # As uvicorn.run: the server re-raises the Ctrl+C it handled; that is a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
