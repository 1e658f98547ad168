"""A plugin served as its own process, for a host: ``python -m ops_center_sdk.plugin_server``.

The host starts this module with the plugin folder as working directory and
a listening socket it opened on 127.0.0.1 (``--fd``), so the port is known
before the process runs and no other program can take it in between. The
module loads the plugin (:func:`~ops_center_sdk.loader.load_plugin`), applies
the config values the host sets (``OPS_CENTER_PLUGIN_CONFIG``, a JSON object),
and serves the module's ``app`` (else ``plugin.create_app()``) with uvicorn.
The app runs managed (``OPS_CENTER_MANAGED=1``): the host drives the
lifecycle through the ``/_ops/`` endpoints (:mod:`ops_center_sdk.protocol`).

A plugin that does not load is reported on one line of the output, which the
host reads to answer the install with the file and line at fault::

    ops-center-plugin-server: {"code": "plugin_import_error", "message": "main.py:3: ..."}

The process stops on SIGTERM (uvicorn's graceful shutdown), and on its own
when the host that started it is gone: the host holds the write end of a pipe
whose read end it hands over (``--lifeline-fd``), which reads EOF once the
host has exited or was killed, whatever namespace the plugin runs in
(``--parent-pid`` does the same by polling the parent's pid).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

#: Prefix of the line that reports why the plugin could not be served.
FAILURE_PREFIX = "ops-center-plugin-server: "
#: The config values the host sets for the plugin (a JSON object).
CONFIG_ENV = "OPS_CENTER_PLUGIN_CONFIG"
#: Exit status when the plugin does not load.
LOAD_FAILED = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Load the plugin in the working folder (or ``folder``) and serve it until stopped."""
    parser = argparse.ArgumentParser(prog="python -m ops_center_sdk.plugin_server")
    parser.add_argument("folder", nargs="?", default=".", help="plugin folder (default: .)")
    parser.add_argument("--fd", type=int, help="a listening socket opened by the host")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (without --fd)")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--lifeline-fd", type=int, help="stop when this pipe reads EOF")
    args = parser.parse_args(argv)

    import uvicorn

    from .errors import OpsCenterError
    from .loader import load_plugin
    from .logger import configure_logging

    configure_logging()
    try:
        loaded = load_plugin(args.folder)
    except OpsCenterError as exc:
        report_failure("plugin_import_error", str(exc))
        return LOAD_FAILED
    try:
        overrides = json.loads(os.environ.get(CONFIG_ENV) or "{}")
        if overrides:
            loaded.plugin.config.set_overrides(overrides)
    except (OpsCenterError, ValueError, TypeError) as exc:
        report_failure("invalid_config", f"{CONFIG_ENV}: {exc}")
        return LOAD_FAILED
    app: Any = getattr(loaded.module, "app", None)
    if not callable(app):
        app = loaded.plugin.create_app()
    config = uvicorn.Config(
        app,
        log_level=os.environ.get("OPS_CENTER_SERVER_LOG_LEVEL", "warning"),
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    if args.parent_pid:
        _stop_when_orphaned(args.parent_pid)
    if args.lifeline_fd is not None:
        _stop_when_lifeline_cut(args.lifeline_fd)
    if args.fd is not None:
        sockets = [socket.socket(fileno=args.fd)]
    else:
        sock = socket.socket()
        sock.bind(("127.0.0.1", args.port))
        sockets = [sock]
    server.run(sockets=sockets)
    return 0


def report_failure(code: str, message: str) -> None:
    """Write the one line the host reads to learn why the plugin was not served."""
    document = json.dumps({"code": code, "message": message})
    print(FAILURE_PREFIX + document, file=sys.stderr, flush=True)


def _stop_when_orphaned(parent_pid: int) -> None:
    """Ask for a graceful stop once the host is gone (it normally stops us itself)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ops-center-parent-watch", daemon=True).start()


def _stop_when_lifeline_cut(descriptor: int) -> None:
    """Ask for a graceful stop once the host's end of the lifeline pipe is closed."""

    def watch() -> None:
        try:
            while os.read(descriptor, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ops-center-lifeline", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
