"""A loopback TCP server that records every connection and never answers (until stopped).

It stands in for a remote server an attacker points a ``$ref`` at: the old
host connected to it and waited, on the event loop, for as long as it held on.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: The longest the server holds a connection before closing it (so a broken run ends).
HOLD_SECONDS = 3.0


@dataclass
class HoldingServer:
    """Where it listens, and how many connections it was sent."""

    url: str
    connections: list[str] = field(default_factory=list)


@contextmanager
def holding_server() -> Iterator[HoldingServer]:
    """A server on 127.0.0.1 that accepts connections, reads, and holds them open."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    host, port = listener.getsockname()
    server = HoldingServer(f"http://{host}:{port}/schema.json")
    stop = threading.Event()

    def serve() -> None:
        held: list[socket.socket] = []
        while not stop.is_set():
            try:
                connection, address = listener.accept()
            except TimeoutError:
                continue
            server.connections.append(f"{address[0]}:{address[1]}")
            held.append(connection)
            # Hold it: answer nothing until the test ends (or HOLD_SECONDS pass).
            stop.wait(HOLD_SECONDS)
        for connection in held:
            connection.close()

    thread = threading.Thread(target=serve, name="holding-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        listener.close()
