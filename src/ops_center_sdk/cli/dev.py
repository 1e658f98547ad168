"""``ops-center-plugin dev``: the local Ops-Center with one plugin, reloaded as you edit it.

The host (REST API, event bus, plugin host) runs under uvicorn; the plugin
in PATH is installed and enabled at startup, and its folder is watched: a
saved change imports the code again and restarts the plugin, keeping its
storage and config. New code that does not import (or whose config breaks
its schema) is reported with file and line while the previous version keeps
serving; the next good save brings the new code in.

With ``--process`` the plugin runs as its own process, the way an Ops-Center
runs it in production: the host starts it on a loopback port, talks to it
over the signed protocol, proxies its routes and restarts it if it crashes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .admin_key import DEFAULT_DATA_DIR, KEY_ENV, AdminKey, admin_key
from .dev_checks import report_lines, run_static_checks, summary
from .listen import PortUnavailable, bound_port, listen, serve

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..host.plugin_host import InstalledPlugin, PluginHost
    from ..validation import ValidationReport

#: Folders under the plugin folder whose changes never reload it.
IGNORED_FOLDERS = (".ops-center", "dist", "build", "tests")


def run(args: argparse.Namespace) -> int:
    """Start the dev host on ``args.host:args.port`` and serve until interrupted."""
    from ..host.server import add_lifespan, create_server_app
    from ..logger import configure_logging
    from ..storage.urls import STORAGE_URL_ENV

    configure_logging()
    folder = Path(args.path).resolve()
    if not folder.is_dir():
        print(f"error: {args.path}: no such plugin folder", file=sys.stderr)
        return 1
    mode = "process" if getattr(args, "process", False) else "in_process"
    if mode == "process" and not (folder / "plugin.yaml").is_file():
        print(
            f"error: {folder} has no plugin.yaml: --process needs one (the host reads it "
            "before the plugin's process starts); `ops-center-plugin init` writes one, "
            "or run without --process",
            file=sys.stderr,
        )
        return 1
    try:
        sock = listen(args.host, args.port)
    except PortUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data_dir = Path(args.data_dir or DEFAULT_DATA_DIR).absolute()
    key = admin_key(data_dir)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    if ":" in shown:
        shown = f"[{shown}]"
    base_url = f"http://{shown}:{bound_port(sock)}"
    app = create_server_app(
        data_dir=data_dir,
        admin_key=key.value,
        public_url=base_url,
        local_url=base_url,  # where a plugin process calls the API back
        storage_url=os.environ.get(STORAGE_URL_ENV) or None,
    )
    session = DevSession(
        app.state.plugins, folder, data_dir=data_dir, base_url=base_url, key=key, mode=mode
    )
    add_lifespan(app, session.running)
    with sock:
        serve(app, sock)
    return 0


class DevSession:
    """One plugin folder under development: installed at start, reloaded on change."""

    def __init__(
        self,
        host: PluginHost,
        folder: Path,
        *,
        data_dir: Path,
        base_url: str,
        key: AdminKey,
        out: TextIO | None = None,
        mode: str = "in_process",
    ) -> None:
        self.host = host
        self.mode = mode
        self.folder = folder
        self.data_dir = data_dir
        self.base_url = base_url
        self.key = key
        self.out = out or sys.stdout
        self.plugin_id: str | None = None
        self._replaced = "another copy"

    @asynccontextmanager
    async def running(self, app: FastAPI) -> AsyncIterator[None]:
        """The app's lifespan part: install, print the URLs, watch until shutdown."""
        await self.install()
        self.print_urls()
        stop = asyncio.Event()
        watcher = asyncio.create_task(self.watch(stop), name="ops-center-dev-watch")
        forget = self.host.on_install(self.installed_elsewhere)
        try:
            yield
        finally:
            forget()
            stop.set()
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher

    async def install(self) -> InstalledPlugin | None:
        """Install (or take up again) the plugin in the folder and enable it."""
        from ..host.errors import HostError

        checks = asyncio.create_task(run_static_checks(self.folder))
        try:
            entry = await self.host.install_folder(self.folder, replace=True, mode=self.mode)
        except HostError as exc:
            self.plugin_id = self._installed_id()
            self.say(f"\n✗ the plugin in {self.folder} did not start:\n  {exc.message}")
            self.say("  The host keeps running; save a fix and the plugin is loaded again.\n")
            await self._show_checks(checks)
            return None
        self.plugin_id = entry.id
        if entry.loaded is not None and entry.loaded.manifest_from_code:
            from ..loader import code_only_note

            self.say(code_only_note(self.folder))
        if entry.status == "error":
            self.say(f"\n✗ {entry.id} is installed but did not start:\n  {_reason(entry)}")
            self.say("  The host keeps running; save a fix and the plugin is loaded again.\n")
        await self._show_checks(checks)
        return entry

    async def reload(self, changed: Iterable[str]) -> InstalledPlugin | None:
        """Bring in the folder's new code, keeping the plugin's data."""
        from ..host.errors import HostError

        names = ", ".join(sorted(changed)) or "files"
        checks = asyncio.create_task(run_static_checks(self.folder))
        served = self._entry()
        elsewhere = served is not None and served.folder != self.folder
        try:
            if served is None or elsewhere:
                # Not installed, or another copy (a marketplace install) took its
                # place: the watched folder is installed over it again.
                entry = await self.host.install_folder(self.folder, replace=True, mode=self.mode)
            else:
                entry = await self.host.reload(served.id)
        except HostError as exc:
            running = self.plugin_id is not None and self.host.get(self.plugin_id).enabled
            still = "still serving the previous version" if running else "the plugin is not running"
            self.say(f"✗ {names} changed; reload failed ({still}):\n  {exc.message}")
            await self._show_checks(checks)
            return None
        self.plugin_id = entry.id
        version = entry.record.get("version")
        if elsewhere:
            self.say(
                f"↻ {names} changed; installed {self.folder} again over {self._replaced}: "
                f"{entry.id} {version} ({entry.status}) now runs from the watched folder"
            )
        else:
            self.say(f"↻ {names} changed; reloaded {entry.id} {version} ({entry.status})")
        if entry.status == "error":
            self.say(f"  {_reason(entry)}")
        await self._show_checks(checks)
        return entry

    async def _show_checks(self, checks: asyncio.Task[ValidationReport | None]) -> None:
        """Print what ``validate`` finds and keep it on the plugin; it never stops the plugin."""
        try:
            report = await checks
        except Exception as exc:  # a bug in a check must not take the dev host down
            self.say(f"  validate could not check {self.folder}: {type(exc).__name__}: {exc}")
            return
        if report is None:
            return
        for line in report_lines(report):
            self.say(line)
        if self.plugin_id is not None and self.plugin_id in _ids(self.host):
            self.host.record_validation(self.plugin_id, summary(report))

    def installed_elsewhere(self, entry: InstalledPlugin) -> None:
        """Say so when another copy of the watched plugin is installed over it."""
        if entry.id != self.plugin_id or entry.folder == self.folder:
            return
        self._replaced = describe_source(entry.record.get("source"), entry.folder)
        version = entry.record.get("version")
        self.say(
            f"⚠ {entry.id} {version} now runs from {self._replaced}, not from {self.folder}, "
            "the folder this dev watches.\n"
            f"  Save a file in {self.folder} to install the watched copy over it again "
            f"(GET /api/v1/plugins/{entry.id} shows the source)."
        )

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every batch of saved changes in the folder, until ``stop`` is set."""
        from watchfiles import DefaultFilter, awatch

        ignored = [str(self.data_dir), *(str(self.folder / name) for name in IGNORED_FOLDERS)]
        changes_filter = DefaultFilter(ignore_paths=ignored)
        async for changes in awatch(self.folder, watch_filter=changes_filter, stop_event=stop):
            await self.reload(_changed_names(changes, self.folder))

    def print_urls(self) -> None:
        base = self.base_url
        lines = [
            "",
            f"Ops-Center (local) is starting on {base}",
            f"  REST API    {base}/api/v1",
            f"  API docs    {base}/docs",
        ]
        entry = self._entry()
        if entry is not None:
            version = entry.record.get("version")
            lines.append(f"  Plugin      {entry.id} {version} ({entry.status}), from {self.folder}")
            process = self.host.describe(entry).get("process")
            if process is not None:
                lines.append(
                    f"              its own process: pid {process['pid']}, {process['url']}"
                )
            for route in self.host.route_paths(entry):
                methods = ",".join(route["methods"])
                public = "  (public: no key needed)" if route.get("public") else ""
                lines.append(f"              {methods:<6} {base}{route['path']}{public}")
        lines.append(f"  Admin key   {self._key_hint()}")
        lines.append(f"  Data        {self.data_dir}")
        lines.append(f"  Sandbox     {self._sandbox_hint()}")
        token = self.key.value if self.key.origin == "generated" else "$OPS_CENTER_API_KEY"
        lines.append(f'  Try         curl -H "Authorization: Bearer {token}" {base}/api/v1/plugins')
        lines.append(f"Watching {self.folder} for changes (Ctrl+C stops).\n")
        self.say("\n".join(lines))

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _sandbox_hint(self) -> str:
        if self.mode != "process":
            return (
                "none: in-process plugins run inside the host, for code you trust "
                "(--process runs each in a sandbox)"
            )
        sandbox = self.host.sandbox
        if sandbox.reason:
            return f"NONE: {sandbox.reason}"
        own_user = " and a user of its own" if os.geteuid() == 0 else ""
        return f"{sandbox.kind}: each plugin process sees only its own folders{own_user}"

    def _key_hint(self) -> str:
        if self.key.origin == "env":
            return "from $OPS_CENTER_API_KEY"
        if self.key.origin == "generated":
            # Shown this once; later starts name only where it is kept.
            return f"{self.key.value}  (generated; kept for you in {self.key.path})"
        return f"kept in {self.key.path} (export {KEY_ENV}=$(head -1 {self.key.path}))"

    def _entry(self) -> InstalledPlugin | None:
        if self.plugin_id is None or self.plugin_id not in _ids(self.host):
            return None
        return self.host.get(self.plugin_id)

    def _installed_id(self) -> str | None:
        for entry in self.host.installed():
            if entry.folder == self.folder:
                return entry.id
        return None


def describe_source(source: Any, folder: Path) -> str:
    """Where an installed copy came from, for a person: a marketplace package or a folder."""
    if isinstance(source, dict) and source.get("type") == "marketplace":
        return (
            f"the marketplace package {source.get('plugin_id')} {source.get('version')} "
            f"(unpacked in {folder})"
        )
    return f"the folder {folder}"


def _reason(entry: InstalledPlugin) -> str:
    return str((entry.error or {}).get("message", "it failed; see the host's log"))


def _ids(host: PluginHost) -> set[str]:
    return {entry.id for entry in host.installed()}


def _changed_names(changes: Iterable[tuple[Any, str]], folder: Path) -> list[str]:
    """The changed files, relative to the folder; editors' temporary files left out."""
    paths = {path for _, path in changes}
    # A temporary file comes and goes within one batch: name what is there now.
    shown = {path for path in paths if Path(path).exists()} or paths
    return [_relative(path, folder) for path in shown]


def _relative(path: str, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:
        return path
