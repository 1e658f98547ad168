"""``ops-center-plugin``: the entry point.

Only :mod:`argparse` is imported here; each command's module (and FastAPI,
uvicorn, ...) is imported when that command runs, so ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from .. import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

EPILOG = """examples:
  ops-center-plugin init my-plugin --name "My Plugin" --category monitoring
  ops-center-plugin validate my-plugin
  ops-center-plugin build my-plugin
  ops-center-plugin publish my-plugin --url https://ops.example.com
  ops-center-plugin serve examples/device_anomaly_detector
  ops-center-plugin serve . --port 8080

Run 'ops-center-plugin COMMAND --help' for a command's options."""


class CommandSpec:
    """A command's parser, recorded now and built only when that command is used.

    Building an ``ArgumentParser`` costs argparse a translation lookup per
    message; ``--help`` and each command pay only for their own parser.
    """

    def __init__(
        self, parser_class: type[argparse.ArgumentParser], options: dict[str, Any]
    ) -> None:
        self._parser_class = parser_class
        self._options = options
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("add_argument", args, kwargs))

    def set_defaults(self, **kwargs: Any) -> None:
        self._calls.append(("set_defaults", (), kwargs))

    def build(self) -> argparse.ArgumentParser:
        parser = self._parser_class(**self._options)
        for method, args, kwargs in self._calls:
            getattr(parser, method)(*args, **kwargs)
        return parser


class CommandParsers(dict[str, object]):
    """Command name -> parser, building each :class:`CommandSpec` on first use."""

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        value = super().__getitem__(name)
        if isinstance(value, CommandSpec):
            built = value.build()
            super().__setitem__(name, built)
            return built
        assert isinstance(value, argparse.ArgumentParser)
        return value


class LazyCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-commands whose parsers are built only when they run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._name_parser_map = CommandParsers()
        self.choices = self._name_parser_map

    def add_parser(self, name: str, **kwargs: Any) -> CommandSpec:  # type: ignore[override,unused-ignore]
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        help_text = kwargs.pop("help", None)
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help_text))
        spec = CommandSpec(self._parser_class, kwargs)
        dict.__setitem__(self._name_parser_map, name, spec)
        return spec


class ExamplesHelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal; keeps an epilog of examples as written."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        # argparse would import shutil (and with it zlib, bz2 and lzma) for the width.
        kwargs.setdefault("width", _terminal_width())
        super().__init__(prog, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _terminal_width() -> int:
    """Columns for help text: $COLUMNS, else the terminal's, else 80 (less 2, as argparse)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return max(int(columns) - 2, 20)
    try:
        return max(os.get_terminal_size(sys.stdout.fileno()).columns - 2, 20)
    except (OSError, ValueError):
        return 78


def _emit_timeout(text: str) -> float:
    """``emit --timeout``: a number of seconds above 0."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler`` to 'module:function'."""
    parser = argparse.ArgumentParser(
        prog="ops-center-plugin",
        description="Build, run, test and ship Ops-Center plugins.",
        epilog=EPILOG,
        formatter_class=ExamplesHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.register("action", "parsers", LazyCommands)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    assert isinstance(commands, LazyCommands)

    serve = commands.add_parser(
        "serve",
        help="run one plugin's app on its own (uvicorn)",
        description="Serve the plugin in PATH as its own FastAPI app: it installs on its "
        "first start, is enabled while it runs and is disabled when it stops.",
        epilog="example:\n  ops-center-plugin serve examples/device_anomaly_detector --port 8080",
        formatter_class=ExamplesHelpFormatter,
    )
    serve.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.set_defaults(handler="ops_center_sdk.cli.serve:run")
    add_package_commands(commands)

    dev = commands.add_parser(
        "dev",
        help="run a local Ops-Center with the plugin, reloading it as you edit",
        description="Start the local Ops-Center (REST API, event bus, plugin host) with the "
        "plugin in PATH installed and enabled. Saving a file of the plugin reloads it, keeping "
        "its storage. Data lives in .ops-center/data (or --data-dir). The admin key is "
        "$OPS_CENTER_API_KEY, else one generated once, printed once and kept outside the data "
        "folder, in ~/.config/ops-center/dev-keys/ (where plugins cannot read it).",
        epilog="examples:\n  export OPS_CENTER_API_KEY=dev-key\n"
        "  ops-center-plugin dev examples/device_anomaly_detector --port 8000\n"
        "  ops-center-plugin dev examples/device_anomaly_detector --process",
        formatter_class=ExamplesHelpFormatter,
    )
    dev.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    dev.add_argument("--data-dir", help="where the host keeps its data (default: .ops-center/data)")
    dev.add_argument(
        "--process",
        action="store_true",
        help="run the plugin as its own process (as Ops-Center runs it), not inside the host",
    )
    dev.set_defaults(handler="ops_center_sdk.cli.dev:run")

    emit = commands.add_parser(
        "emit",
        help="fire an event into a running dev host",
        description="Send EVENT with the payload --data to a running Ops-Center "
        "(POST /api/v1/events, admin key). The host delivers it in the background; --wait "
        "returns once every subscribed plugin handled it. Exit code 0 when accepted (with "
        "--wait: handled), 1 when the host refused it or cannot be reached (with --wait: or a "
        "plugin's handler failed), 2 for bad arguments, 3 when --timeout passed first.",
        epilog="example:\n  ops-center-plugin emit device.metrics_updated --wait "
        '--data \'{"device_id": "web-1", "metrics": {"cpu_usage": 97}}\'',
        formatter_class=ExamplesHelpFormatter,
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
    emit.add_argument(
        "--wait",
        action="store_true",
        help="return once every subscribed plugin handled the event (exit 1 if one failed)",
    )
    emit.add_argument(
        "--timeout",
        type=_emit_timeout,
        default=30.0,
        metavar="SECONDS",
        help="how long --wait waits (default: 30)",
    )
    emit.set_defaults(handler="ops_center_sdk.cli.emit:run")
    return parser


PLUGIN_TYPES = ("backend", "frontend", "hybrid", "container")
CATEGORIES = ("monitoring", "ai", "security", "integration", "analytics")


def add_package_commands(commands: LazyCommands) -> None:
    """``init``, ``validate``, ``build`` and ``publish``: from a new folder to a marketplace."""
    init = commands.add_parser(
        "init",
        help="create a new plugin folder",
        description="Create the folder NAME with a working plugin: plugin.yaml, main.py, "
        "config.yaml, requirements.txt, README.md, .gitignore and tests. NAME is also the "
        "plugin's id. On a terminal, what the options leave out is asked for; otherwise "
        "defaults are used. An existing folder is never overwritten.",
        epilog="""examples:
  ops-center-plugin init my-plugin \\
    --name "My Awesome Plugin" \\
    --description "Does something awesome" \\
    --author "Your Name" \\
    --category monitoring
  ops-center-plugin init status-page --type frontend --no-input

exit codes: 0 created, 1 the folder exists or cannot be written, 2 bad options""",
        formatter_class=ExamplesHelpFormatter,
    )
    init.add_argument("folder", metavar="NAME", help="folder to create; its name is the plugin id")
    init.add_argument("--name", help="display name (default: NAME in title case)")
    init.add_argument("--description", help="what the plugin does, in a sentence")
    init.add_argument("--author", help="your name or your organization's")
    init.add_argument("--category", choices=CATEGORIES, help="default: monitoring")
    init.add_argument(
        "--type",
        choices=PLUGIN_TYPES,
        help="backend (hooks, routes, tasks; the default), frontend (a page), hybrid "
        "(both), container (its own service, with a Dockerfile)",
    )
    init.add_argument("--version", help="SemVer version (default: 1.0.0)")
    init.add_argument("--no-input", action="store_true", help="never prompt, even on a terminal")
    init.set_defaults(handler="ops_center_sdk.cli.init:run")

    validate = commands.add_parser(
        "validate",
        help="check a plugin without running it",
        description="Check the plugin in PATH: plugin.yaml's rules, the required files, that "
        "every hook and route plugin.yaml names has a matching decorated handler (and the "
        "reverse), that the permissions cover the plugin.api calls the code makes, and that "
        "config.yaml satisfies config_schema. The code is read, never run.",
        epilog="""examples:
  ops-center-plugin validate
  ops-center-plugin validate path/to/my-plugin --json | jq '.findings[]'

exit codes: 0 valid (warnings allowed), 1 not valid, 2 bad options""",
        formatter_class=ExamplesHelpFormatter,
    )
    validate.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    validate.add_argument("--json", action="store_true", help="print the findings as JSON")
    validate.set_defaults(handler="ops_center_sdk.cli.validate:run")

    build = commands.add_parser(
        "build",
        help="validate, then package the plugin into dist/",
        description="Validate the plugin in PATH, then write <id>-<version>.tar.gz and its "
        ".sha256 (sha256sum format) into dist/. The package is reproducible: the same files "
        "give the same bytes. Left out: VCS folders, caches, virtual environments, dist/, "
        ".ops-center/ and what .opsignore (gitignore syntax) lists. A link to a file inside "
        "the folder is stored as that file; a link pointing outside stops the build.",
        epilog="""examples:
  ops-center-plugin build
  ops-center-plugin build path/to/my-plugin --output /tmp/packages
  cd dist && sha256sum -c my-plugin-1.0.0.tar.gz.sha256

exit codes: 0 built, 1 invalid plugin or build failure, 2 bad options""",
        formatter_class=ExamplesHelpFormatter,
    )
    build.add_argument("path", nargs="?", default=".", help="plugin folder (default: .)")
    build.add_argument("--output", "-o", metavar="DIR", help="where to write (default: PATH/dist)")
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(handler="ops_center_sdk.cli.build:run")

    publish = commands.add_parser(
        "publish",
        help="upload the package to an Ops-Center marketplace",
        description="Upload the plugin's package (dist/<id>-<version>.tar.gz, built first when "
        "missing or older than the plugin's files) with its checksum to the marketplace of "
        "the Ops-Center at OPS_CENTER_API_URL, with the key OPS_CENTER_API_KEY (or --url, "
        "--key). The key needs plugins:admin. Plain http is refused except to this machine. "
        "A version already published is refused (409), never replaced.",
        epilog="""examples:
  export OPS_CENTER_API_URL=https://ops.example.com
  export OPS_CENTER_API_KEY=your_api_key
  ops-center-plugin publish
  ops-center-plugin publish --url http://127.0.0.1:8000    # the local `dev` Ops-Center
  ops-center-plugin publish dist/my-plugin-1.0.0.tar.gz

exit codes: 0 published, 1 refused or failed, 2 missing URL or key, or bad options""",
        formatter_class=ExamplesHelpFormatter,
    )
    publish.add_argument(
        "path", nargs="?", default=".", help="plugin folder or .tar.gz package (default: .)"
    )
    publish.add_argument("--url", help="the Ops-Center (default: $OPS_CENTER_API_URL)")
    publish.add_argument("--key", help="API key (default: $OPS_CENTER_API_KEY)")
    publish.add_argument("--rebuild", action="store_true", help="build again before uploading")
    publish.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the server (default: 60)"
    )
    publish.add_argument("--json", action="store_true", help="print the result as JSON")
    publish.set_defaults(handler="ops_center_sdk.cli.publish:run")


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
