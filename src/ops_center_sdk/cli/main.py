"""``ops-center-plugin``: the entry point.

Only :mod:`argparse` is imported here; each command's module (and FastAPI,
uvicorn, ...) is imported when that command runs, so ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from .. import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

EPILOG = """examples:
  ops-center-plugin serve examples/device_anomaly_detector
  ops-center-plugin serve . --port 8080

Run 'ops-center-plugin COMMAND --help' for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler`` to 'module:function'."""
    parser = argparse.ArgumentParser(
        prog="ops-center-plugin",
        description="Build, run, test and ship Ops-Center plugins.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run one plugin's app on its own (uvicorn)",
        description="Serve the plugin in PATH as its own FastAPI app: it installs on its "
        "first start, is enabled while it runs and is disabled when it stops.",
        epilog="example:\n  ops-center-plugin serve examples/device_anomaly_detector --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.set_defaults(handler="ops_center_sdk.cli.serve:run")

    dev = commands.add_parser(
        "dev",
        help="run a local Ops-Center with the plugin, reloading it as you edit",
        description="Start the local Ops-Center (REST API, event bus, plugin host) with the "
        "plugin in PATH installed and enabled. Saving a file of the plugin reloads it, keeping "
        "its storage. Data lives in .ops-center/data (or --data-dir). The admin key is "
        "$OPS_CENTER_API_KEY, else one generated once and saved in the data folder.",
        epilog="example:\n  export OPS_CENTER_API_KEY=dev-key\n"
        "  ops-center-plugin dev examples/device_anomaly_detector --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    dev.add_argument("--data-dir", help="where the host keeps its data (default: .ops-center/data)")
    dev.set_defaults(handler="ops_center_sdk.cli.dev:run")

    emit = commands.add_parser(
        "emit",
        help="fire an event into a running dev host",
        description="Send EVENT with the payload --data to a running Ops-Center "
        "(POST /api/v1/events, admin key). Exit code 0 when accepted, 1 when the host refused "
        "it or cannot be reached, 2 for bad arguments.",
        epilog="example:\n  ops-center-plugin emit device.metrics_updated "
        '--data \'{"device_id": "web-1", "metrics": {"cpu_usage": 97}}\'',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emit.add_argument("event", help="event name, e.g. device.metrics_updated")
    emit.add_argument("--data", default="{}", help="the payload, a JSON object (default: {})")
    emit.add_argument(
        "--url", help="the host (default: $OPS_CENTER_API_URL or http://127.0.0.1:8000)"
    )
    emit.add_argument(
        "--key", help="admin key (default: $OPS_CENTER_API_KEY, else the one dev saved)"
    )
    emit.add_argument("--data-dir", help="where dev saved its key (default: .ops-center/data)")
    emit.set_defaults(handler="ops_center_sdk.cli.emit:run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    target = getattr(args, "handler", None)
    if target is None:
        parser.print_help()
        return 2
    module_name, function_name = target.split(":")
    command = getattr(import_module(module_name), function_name)
    try:
        return int(command(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
