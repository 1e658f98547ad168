"""The plugin host: runs plugins loaded from folders inside the local Ops-Center.

The host drives each plugin only through its :class:`~ops_center_sdk.Plugin`
object (the seam between the two), and gives it:

- its own **storage**: SQLite at ``<data_dir>/plugins/<id>/storage.db`` (or
  the ``storage_url`` given), kept across restarts and reloads;
- its own **API key**, granting exactly the manifest's ``permissions``, and an
  :class:`~ops_center_sdk.api.APIClient` using it. The client reaches the host
  app in memory (``httpx.ASGITransport``), not over a socket: the same REST
  app, auth and permission checks, without a connection per call and without
  knowing which port the server listens on. Its base URL is the host's public
  URL, so messages name the address a user would call;
- its **config**: config.yaml, then the values set through
  ``PUT /api/v1/plugins/{id}/config`` (kept in the host store);
- the **events** it subscribes to: one bus subscription per enabled plugin,
  so a slow or failing plugin delays nobody else and never the REST response;
- its place in the **filter chains** (``device.data.process``): one chain
  across every enabled plugin, higher priority first, equal priorities in
  registration order. Filters run inline (their result is what is stored);
  each is bounded by its own timeout, and one that fails leaves the value as
  it was;
- its **routes** at ``/plugins/<id>/...`` while it is enabled;
- a ring of its recent **log** records and its **health** (state, last
  error, hook counts, scheduled tasks).

A plugin runs either in the host's process (``mode: "in_process"``, the
default: its code is imported and driven through its ``Plugin`` object) or
as its own process (``mode: "process"``: started, proxied and supervised,
driven over the signed wire protocol). Both sit behind one interface,
:class:`~ops_center_sdk.host.runtime.PluginRuntime`; this module keeps what
is common to both and picks the runtime when a plugin's code is brought in.

State that outlives the process (which plugins are installed, from where,
enabled or not, their config values) is in the host store, as records of
kind ``plugins``, in install order. The host never raises a plugin's failure
into the server: a plugin that fails to load or enable is kept, marked
``error``, and everything else goes on.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..api import APIClient
from ..api.client import KEY_ENV, URL_ENV
from ..errors import ConfigError, OpsCenterError
from ..loader import LoadedPlugin, load_plugin, module_name_for
from ..logger import PLUGIN_LOGGER_PREFIX
from ..plugin import system_namespace
from ..protocol import MANAGED_ENV
from ..storage import Storage, open_storage
from ..storage.urls import DATA_DIR_ENV, STORAGE_URL_ENV
from .auth import APIKeys
from .bus import EventBus, EventEnvelope
from .dead_letters import DeadLetters, envelope_of
from .deliveries import EventDeliveries
from .errors import HostError, NotFound
from .loop_watchdog import (
    LoopBlock,
    LoopBlocks,
    LoopWatchdog,
    blame,
    threshold_from_env,
    warn_blocked,
)
from .plugin_errors import (
    PluginConflict,
    PluginNotFound,
    PluginProblem,
    PluginUnavailable,
    config_problem,
    failure_problem,
    load_problem,
)
from .plugin_folder import plugin_folder
from .plugin_logs import DEFAULT_CAPACITY, HookFailureWatch, RecentLogs
from .plugin_routes import PluginRoutes
from .process_isolation import (
    allocate_uid,
    inherited_environment,
    limits_for,
    lock_down_store,
    prepare_data_dir,
)
from .process_runtime import ProcessRuntime, ProcessSettings
from .runtime import (
    IN_PROCESS,
    MODES,
    PROCESS,
    FilterChain,
    FilterStep,
    InProcessRuntime,
    PluginRuntime,
)
from .sandbox import Sandbox, View, detect_sandbox
from .store import HostStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..config import Config
    from ..manifest import Manifest
    from ..plugin import Plugin

log = logging.getLogger("ops_center_sdk.host")

#: Record kind of installed plugins in the host store.
PLUGIN_KIND = "plugins"
#: Base URL a plugin's API client uses when the host has no public address.
IN_PROCESS_URL = "http://ops-center.local"
#: How long shutdown waits for queued events before disabling the plugins.
SHUTDOWN_DRAIN_SECONDS = 10.0


def key_owner(plugin_id: str) -> str:
    """The owner name of a plugin's API key (``plugin:<id>``)."""
    return f"plugin:{plugin_id}"


def subscriber_name(plugin_id: str) -> str:
    """The plugin's durable subscriber name on the event bus (its cursor in the event log)."""
    return f"plugin:{plugin_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(eq=False)
class InstalledPlugin:
    """One installed plugin: its record, the loaded code (if it loads) and what runs."""

    id: str
    folder: Path
    record: dict[str, Any]
    logs: RecentLogs
    loaded: LoadedPlugin | None = None
    runtime: PluginRuntime | None = None
    storage: Storage | None = None
    enabled: bool = False
    error: dict[str, Any] | None = None
    #: What the static checks (``validate``'s) found in its folder, when someone ran them.
    validation: dict[str, Any] | None = None
    events: frozenset[str] = frozenset()
    unsubscribe: Callable[[], None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loop_blocks: LoopBlocks = field(default_factory=LoopBlocks)

    @property
    def plugin(self) -> Plugin | None:
        """The :class:`Plugin` object of an in-process plugin whose code loaded, else None."""
        return self.loaded.plugin if self.loaded is not None else None

    @property
    def mode(self) -> str:
        """``in_process`` (imported into the host) or ``process`` (its own process)."""
        return str(self.record.get("mode") or IN_PROCESS)

    @property
    def wanted(self) -> bool:
        """Whether it should run (what enable/disable asked; kept across restarts)."""
        return bool(self.record.get("enabled"))

    @property
    def status(self) -> str:
        """``enabled``, ``disabled``, or ``error`` (does not load, or failed to enable)."""
        if self.enabled:
            return "enabled"
        if self.runtime is None or self.wanted:
            return "error"
        return "disabled"


@dataclass(frozen=True)
class _Services:
    """What a freshly loaded plugin gets, checked before anything running is touched."""

    loaded: LoadedPlugin
    config: Config

    @property
    def manifest(self) -> Manifest:
        return self.loaded.manifest


class PluginHost:
    """Installs and runs plugins inside a host app made by ``create_host_app``.

    >>> app = create_host_app(data_dir=Path(".ops-center/data"), admin_key="dev-key")
    >>> host = PluginHost(app, data_dir=Path(".ops-center/data"))
    >>> await host.start()                               # installed plugins come back
    >>> entry = await host.install_folder("examples/device_anomaly_detector")
    >>> entry = await host.install_folder("my-plugin", mode="process")  # its own process
    >>> await host.shutdown()

    ``data_dir`` holds each plugin's SQLite storage (None: in memory, unless
    ``storage_url`` names a backend shared by every plugin, such as Redis).
    ``api_url`` is the host's public URL, used as the plugins' API base URL.
    ``local_url`` is where a process on this machine reaches the host's REST
    API (``http://127.0.0.1:<port>``): plugin processes need it, and default
    to ``api_url`` when that is a real address. ``process_settings`` holds the
    timeouts, retries and health checks of plugin processes.
    The host is on ``app.state.plugins`` for the REST routes.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        data_dir: Path | None = None,
        storage_url: str | None = None,
        api_url: str = IN_PROCESS_URL,
        local_url: str | None = None,
        log_capacity: int = DEFAULT_CAPACITY,
        process_settings: ProcessSettings | None = None,
    ) -> None:
        self.app = app
        self.data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self.storage_url = storage_url
        self.api_url = api_url
        self.local_url = local_url or (api_url if api_url != IN_PROCESS_URL else None)
        self.log_capacity = log_capacity
        self.process_settings = process_settings or ProcessSettings()
        self.bus: EventBus = app.state.bus
        self.dead_letters = DeadLetters(app.state.store)
        #: Where the deliveries of each event emitted through :meth:`emit` stand.
        self.deliveries = EventDeliveries()
        self._entries: dict[str, InstalledPlugin] = {}
        self._chains: dict[str, FilterChain] = {}
        self._routes = PluginRoutes(app, self.route_problem)
        self._watch = HookFailureWatch(self._hook_failed)
        threshold = threshold_from_env()
        self._watchdog = (
            LoopWatchdog(self._loop_blocked, threshold=threshold) if threshold else None
        )
        self._transport = httpx.ASGITransport(app=app)
        self._http: httpx.AsyncClient | None = None
        self._scratch: Path | None = None
        self._sandbox: Sandbox | None = None
        self._install_listeners: list[Callable[[InstalledPlugin], None]] = []
        self.bus.set_filter_runner(self._run_filters)
        app.state.plugins = self

    # ==================== reading ====================

    def get(self, plugin_id: str) -> InstalledPlugin:
        """The installed plugin ``plugin_id``; :class:`PluginNotFound` (404) otherwise."""
        entry = self._entries.get(plugin_id)
        if entry is None:
            raise PluginNotFound(plugin_id)
        return entry

    def installed(self) -> list[InstalledPlugin]:
        """Every installed plugin, in install order."""
        return list(self._entries.values())

    def describe(self, entry: InstalledPlugin) -> dict[str, Any]:
        """What ``GET /api/v1/plugins/{id}`` shows of a plugin."""
        record = entry.record
        runtime = entry.runtime
        permissions = runtime.manifest.permissions if runtime is not None else None
        running = runtime.describe() if runtime is not None else {}
        return {
            "id": entry.id,
            "name": record.get("name", entry.id),
            "version": record.get("version"),
            "description": record.get("description", ""),
            "status": entry.status,
            "enabled": entry.enabled,
            "mode": entry.mode,
            **_run_state(entry, running),
            "process": running.get("process"),
            "source": record.get("source"),
            "permissions": list(permissions or ()) if runtime is not None else None,
            "events": sorted(runtime.events()) if runtime is not None else [],
            "filters": sorted(runtime.filter_names()) if runtime is not None else [],
            "routes": self.route_paths(entry),
            "installed_at": record.get("installed_at"),
            "updated_at": record.get("updated_at"),
            "error": entry.error,
            "validation": entry.validation,
        }

    def route_paths(self, entry: InstalledPlugin) -> list[dict[str, Any]]:
        """The plugin's routes: ``{"path": "/plugins/<id>/status", "methods", "public"}``."""
        return entry.runtime.route_paths() if entry.runtime is not None else []

    def config_of(self, plugin_id: str) -> dict[str, Any]:
        """The plugin's merged config, the values the host sets, and the schema."""
        entry = self.get(plugin_id)
        runtime = entry.runtime
        return {
            "config": runtime.config.all() if runtime is not None else None,
            "overrides": copy.deepcopy(entry.record.get("config") or {}),
            "schema": runtime.manifest.config_schema if runtime is not None else None,
        }

    def health(self, plugin_id: str) -> dict[str, Any]:
        """State, last error, hook call/failure counts and scheduled tasks of a plugin."""
        entry = self.get(plugin_id)
        runtime = entry.runtime
        details = runtime.health() if runtime is not None else {}
        running = runtime.describe() if runtime is not None else {}
        hooks: list[dict[str, Any]] = details.get("hooks", [])
        return {
            "id": entry.id,
            "status": entry.status,
            "enabled": entry.enabled,
            "loaded": runtime is not None,
            "mode": entry.mode,
            **_run_state(entry, running),
            "version": entry.record.get("version"),
            "last_error": entry.error,
            "validation": entry.validation,
            "hook_failures": sum(h["failures"] for h in hooks),
            "hooks": hooks,
            "scheduled_tasks": details.get("scheduled_tasks", []),
            **({"loop_blocked": entry.loop_blocks.as_dict()} if entry.mode == IN_PROCESS else {}),
            **{k: v for k, v in details.items() if k not in ("hooks", "scheduled_tasks")},
        }

    def record_validation(self, plugin_id: str, validation: Mapping[str, Any] | None) -> None:
        """Keep what the static checks found in the plugin's folder (``dev`` runs them).

        Shown as ``validation`` by :meth:`describe` and :meth:`health`; it
        never changes whether the plugin runs.
        """
        self.get(plugin_id).validation = dict(validation) if validation is not None else None

    async def check_health(self, plugin_id: str) -> dict[str, Any]:
        """Check now that the plugin answers (a process: ``GET /_ops/health``); its health.

        A plugin process that fails its checks ``unhealthy_after`` times in a
        row, or has exited, is restarted in the background.
        """
        entry = self.get(plugin_id)
        if entry.runtime is not None and entry.enabled:
            await entry.runtime.check_health()
        return self.health(plugin_id)

    def logs(
        self, plugin_id: str, *, limit: int = 100, level: str | None = None
    ) -> list[dict[str, Any]]:
        """The plugin's last ``limit`` log records at ``level`` or above, oldest first."""
        return self.get(plugin_id).logs.records(limit=limit, level=level)

    def route_problem(self, plugin_id: str) -> HostError | None:
        """Why ``/plugins/<plugin_id>/...`` is not served, or None when the plugin runs."""
        entry = self._entries.get(plugin_id)
        if entry is None:
            return PluginNotFound(plugin_id)
        if entry.enabled:
            return None
        if entry.status == "error":
            reason = (entry.error or {}).get("message", "it failed")
            return PluginUnavailable(f"plugin {plugin_id!r} is not running: {reason}")
        return PluginUnavailable(
            f"plugin {plugin_id!r} is disabled; enable it with "
            f"POST /api/v1/plugins/{plugin_id}/enable"
        )

    def on_install(self, listener: Callable[[InstalledPlugin], None]) -> Callable[[], None]:
        """Call ``listener(entry)`` after each install (or replace) succeeds; returns a remover.

        ``dev`` uses it to notice that a marketplace install replaced the
        folder it watches.
        """
        self._install_listeners.append(listener)

        def remove() -> None:
            if listener in self._install_listeners:
                self._install_listeners.remove(listener)

        return remove

    def _installed(self, entry: InstalledPlugin) -> InstalledPlugin:
        for listener in list(self._install_listeners):
            try:
                listener(entry)
            except Exception:
                log.exception("an install listener failed on plugin %r", entry.id)
        return entry

    # ==================== lifecycle ====================

    async def start(self) -> None:
        """Load every installed plugin and enable those that were enabled.

        A plugin that fails is marked ``error`` (see :meth:`health`); the others
        and the host go on.
        """
        self._watch.start()
        if self._watchdog is not None:
            self._watchdog.start()
        for record in self.store.find(PLUGIN_KIND).items:
            if record["id"] in self._entries:
                continue
            entry = self._new_entry(record)
            self._entries[entry.id] = entry
            async with entry.lock:
                try:
                    await self._load(entry)
                    await self._ensure_installed(entry)
                except HostError as exc:
                    self._failed(entry, "load", exc, raised=False)
                    continue
                except Exception as exc:  # storage unusable...: this plugin only
                    problem = failure_problem(entry.id, "load", exc, entry.folder)
                    self._failed(entry, "load", problem, raised=False)
                    continue
                if entry.wanted:
                    await self._enable_quietly(entry)

    async def drain(self) -> None:
        """Wait until every queued event is delivered (or, for a process, given up).

        Covers the bus's queues and the plugin processes' own, and the events
        their deliveries cause in turn.
        """
        while True:
            await self.bus.drain()
            waited = False
            for entry in list(self._entries.values()):
                if entry.runtime is not None:
                    waited = await entry.runtime.drain() or waited
            if not waited:
                return

    async def shutdown(self) -> None:
        """Deliver queued events, then disable every plugin (they stay enabled on record).

        Events a plugin process has not taken by then go to its dead letters.
        """
        try:
            await asyncio.wait_for(self.drain(), SHUTDOWN_DRAIN_SECONDS)
        except TimeoutError:
            log.warning("events still undelivered after %s s at shutdown", SHUTDOWN_DRAIN_SECONDS)
        for entry in reversed(self.installed()):
            async with entry.lock:
                await self._deactivate(entry, shutdown=True)
                await self._close(entry)
                entry.logs.detach()
        self._entries.clear()
        self._rebuild_filters()
        self._watch.stop()
        if self._watchdog is not None:
            self._watchdog.stop()
        self._routes.close()
        self.bus.set_filter_runner(None)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    async def install_folder(
        self,
        path: str | Path,
        *,
        enable: bool = True,
        replace: bool = False,
        source: Mapping[str, Any] | None = None,
        mode: str = IN_PROCESS,
    ) -> InstalledPlugin:
        """Install the plugin in the folder ``path`` (plugin.yaml + entrypoint).

        Its ``on_install`` handlers run once, the first time it is installed
        (its storage remembers). With ``enable`` it is enabled too. A plugin
        already installed is a 409, unless ``replace``: then its code comes
        from ``path`` (and runs in ``mode``) from now on, keeping its storage
        and config (an upgrade, or ``dev`` starting again on a folder).

        ``mode`` is ``in_process`` (the code is imported into the host) or
        ``process`` (the host starts it as its own process and talks to it
        over the signed protocol; the host never imports its code).

        Raises (and installs nothing) when the folder does not load or
        ``on_install`` fails. Once installed, a plugin that fails to enable
        is returned with ``status == "error"`` and the error in ``error``:
        it is installed, and ``path`` is where its code lives from now on.

        ``source`` is recorded as where the plugin came from (default
        ``{"type": "folder", "path": ...}``); the marketplace passes the
        package it unpacked into ``path``.
        """
        folder = plugin_folder(path)
        _check_mode(mode)
        if not replace:
            # Refuse from plugin.yaml alone: code that will not be installed is never run.
            self._refuse_installed(self._read_manifest(folder, None).manifest.id)
        code = self._read_code(folder, None, mode)
        manifest = code.manifest
        plugin_id = manifest.id
        origin = dict(source) if source is not None else {"type": "folder", "path": str(folder)}
        existing = self._entries.get(plugin_id)
        if existing is not None:
            if not replace:
                self._refuse_installed(plugin_id)
            return self._installed(
                await self._replace(existing, code, folder, origin, enable=enable)
            )
        stamp = _now()
        record: dict[str, Any] = {
            "id": plugin_id,
            **_metadata(manifest),
            "source": origin,
            "path": str(folder),
            "mode": mode,
            "enabled": False,
            "config": {},
            "installed_at": stamp,
            "updated_at": stamp,
        }
        entry = self._new_entry(record)
        async with entry.lock:
            try:
                await self._bring_in(entry, self._prepare(entry, code), installed=False)
                await self._ensure_installed(entry)
                if not enable:
                    await self._runtime(entry).disable()  # a process started to install it stops
            except BaseException:
                await self._close(entry)
                self.keys.revoke_owner(key_owner(plugin_id))
                entry.logs.detach()
                raise
            self.store.insert(PLUGIN_KIND, record)
            self._entries[plugin_id] = entry
            if enable:
                self._save(entry, enabled=True)
                await self._enable_quietly(entry)
        return self._installed(entry)

    async def reload(self, plugin_id: str) -> InstalledPlugin:
        """Bring the plugin's code in again from its folder and restart it, keeping its data.

        The new code is loaded (and its config checked) before the running
        version is touched: when it fails, the old version keeps running and
        the error (naming file and line) is raised and kept as ``last_error``.
        In process mode a new process is started first and takes over once
        it answers.
        """
        entry = self.get(plugin_id)
        async with entry.lock:
            runtime = entry.runtime
            try:
                code = self._read_code(entry.folder, plugin_id, entry.mode)
                # Imported code gets its config (config.yaml) checked here, before
                # the running version is touched.
                ready = self._prepare(entry, code)
            except HostError as exc:
                self._failed(entry, "reload", exc)
                raise
            if isinstance(ready, _ProcessCode) and isinstance(runtime, ProcessRuntime):
                await self._restart_process(entry, runtime, ready)
            else:
                await self._swap(entry, ready)
        return entry

    async def enable(self, plugin_id: str) -> InstalledPlugin:
        """Enable the plugin (a no-op when it is enabled); remembered across restarts."""
        entry = self.get(plugin_id)
        async with entry.lock:
            if entry.enabled:
                return entry
            if entry.runtime is None:
                # The code did not load earlier: try again, it may be fixed now.
                try:
                    await self._load(entry)
                    await self._ensure_installed(entry)
                except HostError as exc:
                    self._failed(entry, "load", exc)
                    raise
            self._save(entry, enabled=True)
            await self._activate(entry)
        return entry

    async def disable(self, plugin_id: str) -> InstalledPlugin:
        """Disable the plugin (a no-op when it is not enabled); remembered across restarts."""
        entry = self.get(plugin_id)
        async with entry.lock:
            self._save(entry, enabled=False)
            await self._deactivate(entry, forget=True)
            self.bus.forget(subscriber_name(entry.id))  # also when it had failed to start
        return entry

    async def uninstall(self, plugin_id: str) -> None:
        """Disable the plugin, run its ``on_uninstall`` handlers, delete its data and key."""
        entry = self.get(plugin_id)
        async with entry.lock:
            await self._deactivate(entry, forget=True)
            self.bus.forget(subscriber_name(entry.id))
            runtime = entry.runtime
            if runtime is not None:
                try:
                    await runtime.uninstall()
                except Exception as exc:
                    # Uninstalling must always be possible: the data goes anyway.
                    problem = (
                        exc
                        if isinstance(exc, HostError)
                        else failure_problem(entry.id, "uninstall", exc, entry.folder)
                    )
                    self._failed(entry, "uninstall", problem, raised=False)
                await runtime.close()
            await self._forget_data(entry)
            self.dead_letters.clear(plugin_id)
            self.keys.revoke_owner(key_owner(plugin_id))
            self.store.delete(PLUGIN_KIND, plugin_id)
            entry.logs.detach()
            self._entries.pop(plugin_id, None)

    async def set_config(self, plugin_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the values the host sets for the plugin (checked against ``config_schema``).

        Invalid values raise the 422 naming each key path and the rule it
        breaks; nothing changes then. Valid ones apply at once (a plugin
        process is restarted with them) and are kept.
        """
        entry = self.get(plugin_id)
        runtime = entry.runtime
        if runtime is None:
            raise PluginUnavailable(
                f"plugin {plugin_id!r} does not load, so its config_schema is unknown: "
                f"{(entry.error or {}).get('message', '')}"
            )
        async with entry.lock:
            try:
                runtime.config.set_overrides(values)
            except ConfigError as exc:
                raise config_problem(exc, field_prefix="body.") from None
            except TypeError as exc:
                raise PluginProblem(
                    "invalid_config",
                    str(exc),
                    details=[{"field": "body", "message": str(exc), "type": "json"}],
                ) from None
            self._save(entry, config=copy.deepcopy(dict(values)))
            try:
                await runtime.configure(values)
            except HostError as exc:
                self._failed(entry, "config", exc)
                raise
        return self.config_of(plugin_id)

    async def replay_dead_letter(self, plugin_id: str, event_id: str) -> dict[str, Any]:
        """Queue a dead letter's event for the plugin again, with its event id.

        The record stays until the event is delivered (so a crash meanwhile
        loses nothing); should the delivery fail again, it is updated.
        """
        entry = self.get(plugin_id)
        record = self.dead_letters.get(plugin_id, event_id)
        if record is None:
            raise NotFound(
                f"plugin {plugin_id!r} has no dead letter for event {event_id!r}; "
                f"GET /api/v1/plugins/{plugin_id}/dead-letters lists them"
            )
        if not entry.enabled or entry.runtime is None:
            raise PluginConflict(
                f"plugin {plugin_id!r} is not enabled; enable it, then replay its dead letters"
            )
        entry.runtime.redeliver(
            envelope_of(record), lambda: self.dead_letters.remove(plugin_id, event_id)
        )
        return {"plugin_id": plugin_id, "event_id": event_id, "status": "queued"}

    # ==================== loading and wiring ====================

    @property
    def store(self) -> HostStore:
        store: HostStore = self.app.state.store
        return store

    @property
    def keys(self) -> APIKeys:
        keys: APIKeys = self.app.state.keys
        return keys

    def _new_entry(self, record: dict[str, Any]) -> InstalledPlugin:
        return InstalledPlugin(
            id=record["id"],
            folder=Path(record["path"]),
            record=record,
            logs=RecentLogs(self.log_capacity),
        )

    @staticmethod
    def _runtime(entry: InstalledPlugin) -> PluginRuntime:
        runtime = entry.runtime
        assert runtime is not None, f"plugin {entry.id!r} has no runtime"
        return runtime

    def _refuse_installed(self, plugin_id: str) -> None:
        """A 409 when ``plugin_id`` is already installed."""
        existing = self._entries.get(plugin_id)
        if existing is not None:
            raise PluginConflict(
                f"plugin {plugin_id!r} is already installed (from {existing.folder}); "
                f"uninstall it first with DELETE /api/v1/plugins/{plugin_id}"
            )

    def _read_code(
        self, folder: Path, expected_id: str | None, mode: str
    ) -> LoadedPlugin | _ProcessCode:
        """The plugin's code for ``mode``: imported here, or only its plugin.yaml read."""
        if mode == PROCESS:
            return self._read_manifest(folder, expected_id)
        return self._import(folder, expected_id)

    @staticmethod
    def _import(folder: Path, expected_id: str | None) -> LoadedPlugin:
        """Import the plugin's code afresh (helper modules of its folder too)."""
        _forget_modules(folder)
        try:
            loaded = load_plugin(folder, fresh=True)
        except OpsCenterError as exc:
            raise load_problem(exc, folder) from None
        _check_id(folder, expected_id, loaded.plugin.id)
        return loaded

    @staticmethod
    def _read_manifest(folder: Path, expected_id: str | None) -> _ProcessCode:
        """plugin.yaml of a plugin that runs as a process (its code is not imported here)."""
        from ..manifest import load_manifest

        try:
            manifest = load_manifest(folder)
        except OpsCenterError as exc:
            raise load_problem(exc, folder) from None
        _check_id(folder, expected_id, manifest.id)
        return _ProcessCode(folder, manifest)

    async def _load(self, entry: InstalledPlugin) -> None:
        """Bring the code in from the entry's folder, the way its record says it runs."""
        code = self._read_code(entry.folder, entry.id, entry.mode)
        await self._bring_in(entry, self._prepare(entry, code), installed=True)

    async def _bring_in(
        self, entry: InstalledPlugin, code: _Services | _ProcessCode, *, installed: bool
    ) -> None:
        if isinstance(code, _ProcessCode):
            await self._attach_process(entry, code, installed=installed)
        else:
            await self._apply(entry, code)

    def _prepare(
        self, entry: InstalledPlugin, code: LoadedPlugin | _ProcessCode
    ) -> _Services | _ProcessCode:
        """Check what imported code needs (its config) without touching what runs.

        A process's code is returned as it is: its config is built when it is attached.
        """
        if isinstance(code, _ProcessCode):
            return code
        return _Services(code, self._config_for(entry, code.manifest, code.folder))

    @staticmethod
    def _config_for(entry: InstalledPlugin, manifest: Manifest, folder: Path) -> Config:
        from ..config import Config

        try:
            config = Config.from_manifest(manifest, folder)
            config.set_overrides(entry.record.get("config") or {})
        except ConfigError as exc:
            raise config_problem(exc) from None
        return config

    async def _apply(self, entry: InstalledPlugin, services: _Services) -> None:
        """Give the loaded plugin its storage, key, API client, config and scheduler."""
        from ..scheduler import Scheduler

        plugin = services.loaded.plugin
        if entry.storage is None:
            entry.storage = open_storage(entry.id, self._storage_url(entry.id))
        granted = tuple(plugin.permissions or ())
        key = self._new_key(entry, granted)
        api = APIClient(self.api_url, key, permissions=granted, transport=self._transport)
        state = Storage(entry.storage.backend, system_namespace(entry.id))
        scheduler = Scheduler(owner=entry.id, clock=plugin.clock, state=state)
        plugin.use_services(
            storage=entry.storage, scheduler=scheduler, config=services.config, api=api
        )
        entry.logs.attach(plugin.logger)
        entry.loaded = services.loaded
        entry.runtime = InProcessRuntime(plugin)

    def _new_key(self, entry: InstalledPlugin, granted: tuple[str, ...]) -> str:
        """A fresh API key for the plugin, granting ``granted``; its earlier keys are revoked."""
        self.keys.revoke_owner(key_owner(entry.id))
        return self.keys.issue(key_owner(entry.id), granted)

    async def _attach_process(
        self, entry: InstalledPlugin, code: _ProcessCode, *, installed: bool
    ) -> None:
        """Make the entry a plugin process (started when it is installed or enabled)."""
        if self.local_url is None:
            message = (
                "this Ops-Center does not know its own loopback URL, so a plugin process "
                "could not call its API; run it with a URL (ops-center-plugin dev does)"
            )
            raise PluginProblem(
                "process_mode_unavailable",
                message,
                details=[{"field": "body.mode", "message": message, "type": "mode"}],
            )
        config = self._config_for(entry, code.manifest, code.folder)
        if entry.storage is not None:  # it ran in process before: its process owns the file now
            await entry.storage.close()
            entry.storage = None
        if "secret" in entry.record:  # kept in clear by earlier versions: forget it
            entry.record.pop("secret")
            self._save(entry)
        entry.loaded = None
        entry.logs.attach(logging.getLogger(f"{PLUGIN_LOGGER_PREFIX}.{entry.id}"))
        entry.runtime = ProcessRuntime(
            entry.id,
            code.folder,
            code.manifest,
            config,
            overrides=entry.record.get("config") or {},
            environment=lambda: self._process_environment(entry),
            view=lambda: self._process_view(entry),
            sandbox=self.sandbox,
            client=self._process_client(),
            dead_letters=self.dead_letters,
            settings=self.process_settings,
            installed=installed,
            on_problem=lambda error: setattr(entry, "error", error),
            deliveries=self.deliveries,
        )

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox plugin processes run in (found once, at the first use)."""
        if self._sandbox is None:
            self._sandbox = detect_sandbox()
            if self._sandbox.reason:
                log.warning("plugin processes run without a sandbox: %s", self._sandbox.reason)
        return self._sandbox

    def _process_environment(self, entry: InstalledPlugin) -> dict[str, str]:
        """What a plugin process gets: its own key, URLs and data folder (the runtime adds
        a new secret at each start); nothing else."""
        runtime = self._runtime(entry)
        key = self._new_key(entry, tuple(runtime.manifest.permissions or ()))
        data_dir = self._plugin_data_dir(entry)
        environment = inherited_environment(os.environ)
        assert self.local_url is not None
        environment.update(
            {
                MANAGED_ENV: "1",
                URL_ENV: self.local_url,
                KEY_ENV: key,
                DATA_DIR_ENV: str(data_dir),
                STORAGE_URL_ENV: self.storage_url or _sqlite_url(data_dir / "storage.db"),
                "HOME": str(data_dir),
                "OPS_CENTER_LOG_FORMAT": "json",
            }
        )
        return environment

    def _process_view(self, entry: InstalledPlugin) -> View:
        """What the plugin's process may see: its folder, its data folder, its own user."""
        runtime = self._runtime(entry)
        assert isinstance(runtime, ProcessRuntime)
        uid = entry.record.get("uid") if self.sandbox.switches_user else None
        root = self._plugin_data_root()
        return View(
            folder=runtime.folder,
            data_dir=self._plugin_data_dir(entry),
            hidden=(root,),
            uid=uid,
            limits=limits_for(runtime.manifest),
        )

    def _plugin_data_dir(self, entry: InstalledPlugin) -> Path:
        """``<data>/plugins/<id>``, owned by the plugin's own user when it has one."""
        root = self._plugin_data_root()
        uid: int | None = None
        if self.sandbox.switches_user:
            uid = entry.record.get("uid")
            if not isinstance(uid, int):
                taken = [e.record.get("uid") for e in self._entries.values() if e is not entry]
                uid = allocate_uid(entry.id, (u for u in taken if isinstance(u, int)))
                self._save(entry, uid=uid)
            lock_down_store(root)
        return prepare_data_dir(root, entry.id, uid)

    def _process_client(self) -> httpx.AsyncClient:
        """The one pooled client for every plugin process (deliveries, filters, proxy)."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                timeout=30.0,
                follow_redirects=False,
                trust_env=False,  # loopback traffic never goes through an HTTP proxy
            )
        return self._http

    def _plugin_data_root(self) -> Path:
        """The data folder plugin processes keep their storage in (``plugins/<id>/...``)."""
        if self.data_dir is not None:
            return self.data_dir
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="ops-center-plugins-"))
        return self._scratch

    async def _ensure_installed(self, entry: InstalledPlugin) -> None:
        """Run ``on_install`` unless this installation ran it already."""
        await self._lifecycle(entry, "install", self._runtime(entry).install)

    async def _replace(
        self,
        entry: InstalledPlugin,
        code: LoadedPlugin | _ProcessCode,
        folder: Path,
        origin: dict[str, Any],
        *,
        enable: bool,
    ) -> InstalledPlugin:
        mode = PROCESS if isinstance(code, _ProcessCode) else IN_PROCESS
        async with entry.lock:
            if folder == entry.folder and entry.runtime is not None and mode == entry.mode:
                # The same folder, running already: nothing to swap.
                if enable and not entry.enabled:
                    self._save(entry, enabled=True)
                    await self._enable_quietly(entry)
                return entry
            try:
                ready = self._prepare(entry, code)
                if isinstance(ready, _ProcessCode):
                    self._config_for(entry, ready.manifest, ready.folder)
            except HostError as exc:
                self._failed(entry, "install", exc)
                raise
            if folder != entry.folder:
                entry.validation = None  # it was about the other folder
            entry.folder = folder
            self._save(
                entry,
                source=origin,
                path=str(folder),
                mode=mode,
                **({"enabled": True} if enable else {}),
            )
            await self._swap(entry, ready, quiet=True)
        return entry

    async def _swap(
        self, entry: InstalledPlugin, code: _Services | _ProcessCode, *, quiet: bool = False
    ) -> None:
        """Stop the running version, wire the new one, start it if it should run.

        ``code`` comes from :meth:`_prepare`, so an imported plugin's config was
        checked before anything running is touched. With ``quiet`` a failure to
        enable is only recorded on the entry.
        """
        old = entry.runtime
        await self._deactivate(entry)
        if old is not None:
            await old.close()
        await self._bring_in(entry, code, installed=True)
        self._save(entry, **_metadata(code.manifest))
        entry.error = None
        await self._ensure_installed(entry)
        if entry.wanted:
            await (self._enable_quietly if quiet else self._activate)(entry)

    async def _restart_process(
        self, entry: InstalledPlugin, runtime: ProcessRuntime, code: _ProcessCode
    ) -> None:
        """Reload a plugin process: a new one takes over once it answers."""
        previous = runtime.manifest, runtime.config
        try:
            runtime.config = self._config_for(entry, code.manifest, code.folder)
            runtime.manifest = code.manifest  # its permissions make the new process's key
            await runtime.restart()
        except HostError as exc:
            if runtime.process is not None and runtime.process.running:
                runtime.manifest, runtime.config = previous  # the old process still runs
            self._failed(entry, "reload", exc)
            if entry.enabled and not runtime.wanted:
                await self._deactivate(entry)
            raise
        self._save(entry, **_metadata(code.manifest))
        entry.error = None
        if entry.enabled:
            self._unwire(entry)
            self._wire(entry)

    async def _activate(self, entry: InstalledPlugin) -> None:
        """Enable the loaded plugin: on_enable, scheduler, events, filters, routes."""
        if entry.enabled:
            return
        runtime = self._runtime(entry)
        try:
            runtime.config.check_complete()
        except ConfigError as exc:
            problem = config_problem(exc)
            self._failed(entry, "enable", problem)
            raise problem from None
        await self._lifecycle(entry, "enable", runtime.enable)
        self._wire(entry)
        entry.error = None

    def _wire(self, entry: InstalledPlugin) -> None:
        """Connect a running plugin to the bus, the route table and the filter chains."""
        runtime = self._runtime(entry)
        entry.events = runtime.events()
        entry.unsubscribe = self.bus.subscribe(
            self._deliverer(entry, runtime), name=subscriber_name(entry.id)
        )
        self._routes.mount(entry.id, runtime.routes(), runtime.route_access)
        entry.enabled = True
        self._rebuild_filters()

    def _unwire(self, entry: InstalledPlugin, *, forget: bool = False) -> None:
        """Disconnect the plugin; with ``forget`` its place in the event log goes too.

        Without it (a reload, the host's shutdown) the plugin resumes with the
        first event it had not handled; with it (a disable, an uninstall) the
        events it had not been given are left to the runtime (a process plugin's
        go to its dead letters).
        """
        entry.enabled = False
        if entry.unsubscribe is not None:
            entry.unsubscribe()
            entry.unsubscribe = None
        if forget:
            backlog = self.bus.forget(subscriber_name(entry.id))
            events = entry.events
            left = [envelope for envelope in backlog if envelope["name"] in events]
            if left and entry.runtime is not None:
                entry.runtime.left_undelivered(left)
            # What it had not been given never reaches it: say so to `emit --wait`.
            self.deliveries.drop_waiting(
                entry.id, f"plugin {entry.id!r} was disabled before the event reached it"
            )
        self._routes.unmount(entry.id)
        self._rebuild_filters()

    async def _enable_quietly(self, entry: InstalledPlugin) -> None:
        try:
            await self._activate(entry)
        except HostError as exc:
            log.error("plugin %r: enable failed: %s", entry.id, exc.message)

    async def _deactivate(
        self, entry: InstalledPlugin, *, shutdown: bool = False, forget: bool = False
    ) -> None:
        """Disable a running plugin; its on_disable failing is recorded, not raised.

        ``forget``: it was disabled for good (not reloaded, not the host stopping),
        so it does not resume its events when enabled again.
        """
        if not entry.enabled:
            return
        self._unwire(entry, forget=forget)
        runtime = self._runtime(entry)
        try:
            await runtime.disable(shutdown=shutdown)
        except Exception as exc:
            problem = (
                exc
                if isinstance(exc, HostError)
                else failure_problem(entry.id, "disable", exc, entry.folder)
            )
            self._failed(entry, "disable", problem, raised=False)

    async def _lifecycle(
        self, entry: InstalledPlugin, phase: str, step: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await step()
        except HostError as exc:
            self._failed(entry, phase, exc)
            raise
        except Exception as exc:
            problem = failure_problem(entry.id, phase, exc, entry.folder)
            self._failed(entry, phase, problem)
            raise problem from exc

    async def _close(self, entry: InstalledPlugin) -> None:
        """Release what runs the plugin and its storage (its data stays)."""
        if entry.runtime is not None:
            await entry.runtime.close()
        if entry.storage is not None:
            await entry.storage.close()
            entry.storage = None

    async def _forget_data(self, entry: InstalledPlugin) -> None:
        storage = entry.storage or open_storage(entry.id, self._storage_url(entry.id))
        try:
            await storage.clear()
            await Storage(storage.backend, system_namespace(entry.id)).clear()
        finally:
            await storage.close()
            entry.storage = None
        if self.storage_url is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir / "plugins" / entry.id, ignore_errors=True)

    def _storage_url(self, plugin_id: str) -> str:
        if self.storage_url is not None:
            return self.storage_url
        if self.data_dir is None:
            if self._scratch is not None:  # where its process kept it
                return _sqlite_url(self._scratch / "plugins" / plugin_id / "storage.db")
            return "memory://"
        return _sqlite_url(self.data_dir / "plugins" / plugin_id / "storage.db")

    def _save(self, entry: InstalledPlugin, **changes: Any) -> None:
        entry.record.update(changes, updated_at=_now())
        self.store.replace(PLUGIN_KIND, entry.id, entry.record)

    def _failed(
        self, entry: InstalledPlugin, phase: str, exc: HostError, *, raised: bool = True
    ) -> None:
        """Keep the error as the plugin's last; log it unless the caller gets it raised."""
        entry.error = {
            "phase": phase,
            "code": exc.code,
            "message": exc.message,
            "details": exc.details,
            "at": _now(),
        }
        level = logging.DEBUG if raised else logging.ERROR
        log.log(level, "plugin %r: %s failed: %s", entry.id, phase, exc.message)

    def _loop_blocked(self, block: LoopBlock) -> None:
        """The watchdog saw the loop stuck: name the in-process plugin whose code held it."""
        folders = {
            entry.id: entry.folder
            for entry in self._entries.values()
            if entry.mode == IN_PROCESS and entry.loaded is not None
        }
        found = blame(block.stack, folders)
        if found is None:
            log.debug("the event loop was blocked for %d ms, not by a plugin", block.ms)
            return
        plugin_id, frame = found
        entry = self._entries[plugin_id]
        entry.loop_blocks.add(frame.qualname, block)
        entry.logs.handle(warn_blocked(plugin_id, frame, block))

    def _hook_failed(self, plugin_id: str, error: dict[str, Any]) -> None:
        entry = self._entries.get(plugin_id)
        if entry is not None:
            entry.error = error

    # ==================== events and filters ====================

    async def emit(self, name: str, payload: Mapping[str, Any]) -> EventEnvelope:
        """Emit an event on the bus and track its delivery to each subscribed plugin.

        ``deliveries.describe(envelope["id"])`` says when each has handled it.
        """
        envelope = await self.bus.emit(name, payload)
        # No await since the emit: no delivery can have started yet.
        subscribers = [e.id for e in self._entries.values() if e.enabled and name in e.events]
        self.deliveries.track(envelope, subscribers)
        return envelope

    def _deliverer(
        self, entry: InstalledPlugin, runtime: PluginRuntime
    ) -> Callable[[EventEnvelope], Awaitable[None]]:
        events = entry.events
        deliveries = self.deliveries

        async def deliver(envelope: EventEnvelope) -> None:
            name = envelope["name"]
            if name not in events:
                return
            try:
                report = await runtime.deliver(envelope)
            except Exception as exc:  # a payload the event cannot carry
                entry.error = {"phase": "event", "message": f"{name}: {exc}", "at": _now()}
                deliveries.finished(envelope["id"], entry.id, error=f"{type(exc).__name__}: {exc}")
                raise
            if report is not None:
                deliveries.reported(envelope["id"], entry.id, report)

        deliver.__qualname__ = f"plugin {entry.id}"
        return deliver

    async def _run_filters(self, name: str, value: Any) -> Any:
        chain = self._chains.get(name)
        if chain is None:
            return value
        return await chain.apply(value)

    def _rebuild_filters(self) -> None:
        """One chain per filter name across every enabled plugin (install order, priority)."""
        steps: dict[str, list[FilterStep]] = {}
        for entry in self._entries.values():
            runtime = entry.runtime
            if not entry.enabled or runtime is None:
                continue
            for name in runtime.filter_names():
                steps.setdefault(name, []).extend(runtime.filter_steps(name))
        for chain in self._chains.values():
            chain.retire()
        self._chains = {name: FilterChain(name, chained) for name, chained in steps.items()}


@dataclass(frozen=True)
class _ProcessCode:
    """A plugin that runs as a process, as the host knows it: its folder and plugin.yaml."""

    folder: Path
    manifest: Manifest


def _run_state(entry: InstalledPlugin, running: Mapping[str, Any]) -> dict[str, Any]:
    """``state``, ``healthy`` and ``restarts`` from the runtime's ``describe()``."""
    return {
        "state": running.get("state", "stopped"),
        "healthy": bool(running.get("healthy")) and entry.enabled,
        "restarts": running.get("restarts", 0),
    }


def _metadata(manifest: Manifest) -> dict[str, Any]:
    return {
        "name": manifest.name,
        "version": manifest.version,
        "description": manifest.description,
    }


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        message = f"unknown mode {mode!r}; use {' or '.join(MODES)}"
        raise PluginProblem(
            "invalid_mode",
            message,
            details=[{"field": "body.mode", "message": message, "type": "enum"}],
        )


def _check_id(folder: Path, expected_id: str | None, found_id: str) -> None:
    if expected_id is not None and found_id != expected_id:
        raise PluginProblem(
            "invalid_manifest",
            f"{folder / 'plugin.yaml'}: the plugin id changed from {expected_id!r} to "
            f"{found_id!r}; uninstall {expected_id!r} and install the new id",
            details=[{"field": "id", "message": "id changed", "type": "manifest"}],
        )


def _sqlite_url(path: Path) -> str:
    return "sqlite:///" + quote(path.as_posix(), safe="/:")


def _forget_modules(folder: Path) -> None:
    """Drop the folder's own modules from ``sys.modules`` so a fresh import sees edits."""
    root = folder.resolve()
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if not filename or name.startswith(module_name_for("")):
            continue
        try:
            inside = Path(filename).resolve().is_relative_to(root)
        except (OSError, ValueError):
            continue
        if inside:
            del sys.modules[name]
