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
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..api import APIClient
from ..errors import ConfigError, OpsCenterError
from ..hooks import RegisteredHandler
from ..hooks.dispatch import HandlerChain
from ..loader import LoadedPlugin, load_plugin, module_name_for
from ..plugin import system_namespace
from ..routes import route_prefix
from ..storage import Storage, open_storage
from .auth import APIKeys
from .bus import EventBus, EventEnvelope
from .errors import HostError
from .plugin_errors import (
    PluginConflict,
    PluginNotFound,
    PluginProblem,
    PluginUnavailable,
    config_problem,
    failure_problem,
    load_problem,
)
from .plugin_logs import DEFAULT_CAPACITY, HookFailureWatch, RecentLogs
from .plugin_routes import PluginRoutes
from .store import HostStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..config import Config
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
    storage: Storage | None = None
    enabled: bool = False
    error: dict[str, Any] | None = None
    events: frozenset[str] = frozenset()
    unsubscribe: Callable[[], None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def plugin(self) -> Plugin | None:
        """The running :class:`Plugin` object, or None when its code does not load."""
        return self.loaded.plugin if self.loaded is not None else None

    @property
    def wanted(self) -> bool:
        """Whether it should run (what enable/disable asked; kept across restarts)."""
        return bool(self.record.get("enabled"))

    @property
    def status(self) -> str:
        """``enabled``, ``disabled``, or ``error`` (does not load, or failed to enable)."""
        if self.enabled:
            return "enabled"
        if self.loaded is None or self.wanted:
            return "error"
        return "disabled"


@dataclass(frozen=True)
class _Services:
    """What a freshly loaded plugin gets, checked before anything running is touched."""

    loaded: LoadedPlugin
    config: Config


class PluginHost:
    """Installs and runs plugins inside a host app made by ``create_host_app``.

    >>> app = create_host_app(data_dir=Path(".ops-center/data"), admin_key="dev-key")
    >>> host = PluginHost(app, data_dir=Path(".ops-center/data"))
    >>> await host.start()                               # installed plugins come back
    >>> entry = await host.install_folder("examples/device_anomaly_detector")
    >>> await host.shutdown()

    ``data_dir`` holds each plugin's SQLite storage (None: in memory, unless
    ``storage_url`` names a backend shared by every plugin, such as Redis).
    ``api_url`` is the host's public URL, used as the plugins' API base URL.
    The host is on ``app.state.plugins`` for the REST routes.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        data_dir: Path | None = None,
        storage_url: str | None = None,
        api_url: str = IN_PROCESS_URL,
        log_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.app = app
        self.data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self.storage_url = storage_url
        self.api_url = api_url
        self.log_capacity = log_capacity
        self.bus: EventBus = app.state.bus
        self._entries: dict[str, InstalledPlugin] = {}
        self._chains: dict[str, HandlerChain] = {}
        self._routes = PluginRoutes(app, self.route_problem)
        self._watch = HookFailureWatch(self._hook_failed)
        self._transport = httpx.ASGITransport(app=app)
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
        plugin = entry.plugin
        described: dict[str, Any] = {
            "id": entry.id,
            "name": record.get("name", entry.id),
            "version": record.get("version"),
            "description": record.get("description", ""),
            "status": entry.status,
            "enabled": entry.enabled,
            "source": record.get("source"),
            "permissions": list(plugin.permissions or ()) if plugin is not None else None,
            "events": sorted(plugin.hooks.events()) if plugin is not None else [],
            "filters": sorted(plugin.hooks.filter_names()) if plugin is not None else [],
            "routes": self.route_paths(entry),
            "installed_at": record.get("installed_at"),
            "updated_at": record.get("updated_at"),
            "error": entry.error,
        }
        return described

    def route_paths(self, entry: InstalledPlugin) -> list[dict[str, Any]]:
        """The plugin's routes as ``{"path": "/plugins/<id>/status", "methods": [...]}``."""
        plugin = entry.plugin
        if plugin is None:
            return []
        prefix = route_prefix(entry.id)
        return [
            {"path": prefix + spec.path, "methods": list(spec.methods)} for spec in plugin.routes
        ]

    def config_of(self, plugin_id: str) -> dict[str, Any]:
        """The plugin's merged config, the values the host sets, and the schema."""
        entry = self.get(plugin_id)
        plugin = entry.plugin
        return {
            "config": plugin.config.all() if plugin is not None else None,
            "overrides": copy.deepcopy(entry.record.get("config") or {}),
            "schema": plugin.manifest.config_schema if plugin is not None else None,
        }

    def health(self, plugin_id: str) -> dict[str, Any]:
        """State, last error, hook call/failure counts and scheduled tasks of a plugin."""
        entry = self.get(plugin_id)
        plugin = entry.plugin
        hooks = (
            [
                {
                    "kind": s.kind,
                    "hook": s.hook,
                    "handler": s.handler,
                    "calls": s.calls,
                    "failures": s.failures,
                    "timeouts": s.timeouts,
                }
                for s in plugin.hooks.stats
            ]
            if plugin is not None
            else []
        )
        return {
            "id": entry.id,
            "status": entry.status,
            "enabled": entry.enabled,
            "loaded": plugin is not None,
            "version": entry.record.get("version"),
            "last_error": entry.error,
            "hook_failures": sum(h["failures"] for h in hooks),
            "hooks": hooks,
            "scheduled_tasks": plugin.scheduler.get_tasks() if plugin is not None else [],
        }

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

    # ==================== lifecycle ====================

    async def start(self) -> None:
        """Load every installed plugin and enable those that were enabled.

        A plugin that fails is marked ``error`` (see :meth:`health`); the others
        and the host go on.
        """
        self._watch.start()
        for record in self.store.find(PLUGIN_KIND).items:
            if record["id"] in self._entries:
                continue
            entry = self._new_entry(record)
            self._entries[entry.id] = entry
            async with entry.lock:
                try:
                    services = self._prepare(entry, self._import(entry.folder, entry.id))
                    await self._apply(entry, services)
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

    async def shutdown(self) -> None:
        """Deliver queued events, then disable every plugin (they stay enabled on record)."""
        try:
            await asyncio.wait_for(self.bus.drain(), SHUTDOWN_DRAIN_SECONDS)
        except TimeoutError:
            log.warning("events still undelivered after %s s at shutdown", SHUTDOWN_DRAIN_SECONDS)
        for entry in reversed(self.installed()):
            async with entry.lock:
                await self._deactivate(entry)
                await self._close(entry)
                entry.logs.detach()
        self._entries.clear()
        self._rebuild_filters()
        self._watch.stop()
        self._routes.close()
        self.bus.set_filter_runner(None)

    async def install_folder(
        self,
        path: str | Path,
        *,
        enable: bool = True,
        replace: bool = False,
        source: Mapping[str, Any] | None = None,
    ) -> InstalledPlugin:
        """Install the plugin in the folder ``path`` (plugin.yaml + entrypoint).

        Its ``on_install`` handlers run once, the first time it is installed
        (its storage remembers). With ``enable`` it is enabled too. A plugin
        already installed is a 409, unless ``replace``: then its code comes
        from ``path`` from now on, keeping its storage and config (an upgrade,
        or ``dev`` starting again on a folder).

        Raises (and installs nothing) when the folder does not load or
        ``on_install`` fails. Once installed, a plugin that fails to enable
        is returned with ``status == "error"`` and the error in ``error``:
        it is installed, and ``path`` is where its code lives from now on.

        ``source`` is recorded as where the plugin came from (default
        ``{"type": "folder", "path": ...}``); the marketplace passes the
        package it unpacked into ``path``.
        """
        folder = self._folder(path)
        loaded = self._import(folder, None)
        plugin_id = loaded.plugin.id
        origin = dict(source) if source is not None else {"type": "folder", "path": str(folder)}
        existing = self._entries.get(plugin_id)
        if existing is not None:
            if not replace:
                raise PluginConflict(
                    f"plugin {plugin_id!r} is already installed (from {existing.folder}); "
                    f"uninstall it first with DELETE /api/v1/plugins/{plugin_id}"
                )
            return await self._replace(existing, loaded, folder, origin, enable=enable)
        stamp = _now()
        record: dict[str, Any] = {
            "id": plugin_id,
            **self._metadata(loaded),
            "source": origin,
            "path": str(folder),
            "enabled": False,
            "config": {},
            "installed_at": stamp,
            "updated_at": stamp,
        }
        entry = self._new_entry(record)
        async with entry.lock:
            try:
                await self._apply(entry, self._prepare(entry, loaded))
                await self._ensure_installed(entry)
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
        return entry

    async def reload(self, plugin_id: str) -> InstalledPlugin:
        """Import the plugin's code again from its folder and restart it, keeping its data.

        The new code is imported (and its config checked) before the running
        version is touched: when it fails, the old version keeps running and
        the error (naming file and line) is raised and kept as ``last_error``.
        """
        entry = self.get(plugin_id)
        async with entry.lock:
            try:
                services = self._prepare(entry, self._import(entry.folder, plugin_id))
            except HostError as exc:
                self._failed(entry, "reload", exc)
                raise
            await self._swap(entry, services)
        return entry

    async def enable(self, plugin_id: str) -> InstalledPlugin:
        """Enable the plugin (a no-op when it is enabled); remembered across restarts."""
        entry = self.get(plugin_id)
        async with entry.lock:
            if entry.enabled:
                return entry
            if entry.loaded is None:
                # The code did not load earlier: try again, it may be fixed now.
                try:
                    services = self._prepare(entry, self._import(entry.folder, plugin_id))
                    await self._apply(entry, services)
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
            await self._deactivate(entry)
        return entry

    async def uninstall(self, plugin_id: str) -> None:
        """Disable the plugin, run its ``on_uninstall`` handlers, delete its data and key."""
        entry = self.get(plugin_id)
        async with entry.lock:
            await self._deactivate(entry)
            plugin = entry.plugin
            if plugin is not None:
                try:
                    await plugin.uninstall()
                except Exception as exc:
                    # Uninstalling must always be possible: the data goes anyway.
                    problem = failure_problem(entry.id, "uninstall", exc, entry.folder)
                    self._failed(entry, "uninstall", problem, raised=False)
            await self._forget_data(entry)
            self.keys.revoke_owner(key_owner(plugin_id))
            self.store.delete(PLUGIN_KIND, plugin_id)
            entry.logs.detach()
            self._entries.pop(plugin_id, None)

    def set_config(self, plugin_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the values the host sets for the plugin (checked against ``config_schema``).

        Invalid values raise the 422 naming each key path and the rule it
        breaks; nothing changes then. Valid ones apply at once and are kept.
        """
        entry = self.get(plugin_id)
        plugin = entry.plugin
        if plugin is None:
            raise PluginUnavailable(
                f"plugin {plugin_id!r} does not load, so its config_schema is unknown: "
                f"{(entry.error or {}).get('message', '')}"
            )
        try:
            plugin.config.set_overrides(values)
        except ConfigError as exc:
            raise config_problem(exc, field_prefix="body.") from None
        except TypeError as exc:
            raise PluginProblem(
                "invalid_config",
                str(exc),
                details=[{"field": "body", "message": str(exc), "type": "json"}],
            ) from None
        self._save(entry, config=copy.deepcopy(dict(values)))
        return self.config_of(plugin_id)

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
    def _folder(path: str | Path) -> Path:
        folder = Path(path).expanduser()
        if folder.is_file() and folder.name == "plugin.yaml":
            folder = folder.parent
        if not folder.is_dir():
            message = f"no plugin folder at {str(path)!r} (on the host's machine)"
            raise PluginProblem(
                "invalid_path",
                message,
                details=[{"field": "body.path", "message": message, "type": "path"}],
            )
        return folder.resolve()

    @staticmethod
    def _import(folder: Path, expected_id: str | None) -> LoadedPlugin:
        """Import the plugin's code afresh (helper modules of its folder too)."""
        _forget_modules(folder)
        try:
            loaded = load_plugin(folder, fresh=True)
        except OpsCenterError as exc:
            raise load_problem(exc, folder) from None
        if expected_id is not None and loaded.plugin.id != expected_id:
            raise PluginProblem(
                "invalid_manifest",
                f"{folder / 'plugin.yaml'}: the plugin id changed from {expected_id!r} to "
                f"{loaded.plugin.id!r}; uninstall {expected_id!r} and install the new id",
                details=[{"field": "id", "message": "id changed", "type": "manifest"}],
            )
        return loaded

    @staticmethod
    def _metadata(loaded: LoadedPlugin) -> dict[str, Any]:
        manifest = loaded.manifest
        return {
            "name": manifest.name,
            "version": manifest.version,
            "description": manifest.description,
        }

    def _prepare(self, entry: InstalledPlugin, loaded: LoadedPlugin) -> _Services:
        """Check what the new code needs (its config) without touching what runs."""
        from ..config import Config

        try:
            config = Config.from_manifest(loaded.manifest, loaded.folder)
            config.set_overrides(entry.record.get("config") or {})
        except ConfigError as exc:
            raise config_problem(exc) from None
        return _Services(loaded, config)

    async def _apply(self, entry: InstalledPlugin, services: _Services) -> None:
        """Give the loaded plugin its storage, key, API client, config and scheduler."""
        from ..scheduler import Scheduler

        plugin = services.loaded.plugin
        if entry.storage is None:
            entry.storage = open_storage(entry.id, self._storage_url(entry.id))
        granted = tuple(plugin.permissions or ())
        self.keys.revoke_owner(key_owner(entry.id))
        key = self.keys.issue(key_owner(entry.id), granted)
        api = APIClient(self.api_url, key, permissions=granted, transport=self._transport)
        state = Storage(entry.storage.backend, system_namespace(entry.id))
        scheduler = Scheduler(owner=entry.id, clock=plugin.clock, state=state)
        plugin.use_services(
            storage=entry.storage, scheduler=scheduler, config=services.config, api=api
        )
        entry.logs.attach(plugin.logger)
        entry.loaded = services.loaded

    async def _ensure_installed(self, entry: InstalledPlugin) -> None:
        """Run ``on_install`` unless this plugin's storage says it ran already."""
        plugin = entry.plugin
        assert plugin is not None
        if not await plugin.is_installed():
            await self._lifecycle(entry, "install", plugin.install)

    async def _replace(
        self,
        entry: InstalledPlugin,
        loaded: LoadedPlugin,
        folder: Path,
        origin: dict[str, Any],
        *,
        enable: bool,
    ) -> InstalledPlugin:
        async with entry.lock:
            if folder == entry.folder and entry.loaded is not None:
                # The same folder, running already: nothing to swap.
                if enable and not entry.enabled:
                    self._save(entry, enabled=True)
                    await self._enable_quietly(entry)
                return entry
            try:
                services = self._prepare(entry, loaded)
            except HostError as exc:
                self._failed(entry, "install", exc)
                raise
            entry.folder = folder
            self._save(
                entry, source=origin, path=str(folder), **({"enabled": True} if enable else {})
            )
            await self._swap(entry, services, quiet=True)
        return entry

    async def _swap(
        self, entry: InstalledPlugin, services: _Services, *, quiet: bool = False
    ) -> None:
        """Stop the running version, wire the new one, start it if it should run.

        With ``quiet`` a failure to enable is only recorded on the entry.
        """
        old = entry.plugin
        await self._deactivate(entry)
        if old is not None:
            await old.api.close()
        await self._apply(entry, services)
        self._save(entry, **self._metadata(services.loaded))
        entry.error = None
        await self._ensure_installed(entry)
        if entry.wanted:
            await (self._enable_quietly if quiet else self._activate)(entry)

    async def _activate(self, entry: InstalledPlugin) -> None:
        """Enable the loaded plugin: on_enable, scheduler, events, filters, routes."""
        if entry.enabled:
            return
        plugin = entry.plugin
        assert plugin is not None
        try:
            plugin.config.check_complete()
        except ConfigError as exc:
            problem = config_problem(exc)
            self._failed(entry, "enable", problem)
            raise problem from None
        await self._lifecycle(entry, "enable", plugin.enable)
        entry.events = frozenset(plugin.hooks.events())
        entry.unsubscribe = self.bus.subscribe(self._deliverer(entry, plugin))
        self._routes.mount(entry.id, plugin.router())
        entry.enabled = True
        entry.error = None
        self._rebuild_filters()

    async def _enable_quietly(self, entry: InstalledPlugin) -> None:
        try:
            await self._activate(entry)
        except HostError as exc:
            log.error("plugin %r: enable failed: %s", entry.id, exc.message)

    async def _deactivate(self, entry: InstalledPlugin) -> None:
        """Disable a running plugin; its on_disable failing is recorded, not raised."""
        if not entry.enabled:
            return
        entry.enabled = False
        if entry.unsubscribe is not None:
            entry.unsubscribe()
            entry.unsubscribe = None
        self._routes.unmount(entry.id)
        self._rebuild_filters()
        plugin = entry.plugin
        assert plugin is not None
        try:
            await plugin.disable()
        except Exception as exc:
            problem = failure_problem(entry.id, "disable", exc, entry.folder)
            self._failed(entry, "disable", problem, raised=False)

    async def _lifecycle(
        self, entry: InstalledPlugin, phase: str, step: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await step()
        except Exception as exc:
            problem = failure_problem(entry.id, phase, exc, entry.folder)
            self._failed(entry, phase, problem)
            raise problem from exc

    async def _close(self, entry: InstalledPlugin) -> None:
        """Release the plugin's API client and storage (its data stays)."""
        plugin = entry.plugin
        if plugin is not None:
            await plugin.api.close()
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
            return "memory://"
        path = self.data_dir / "plugins" / plugin_id / "storage.db"
        return "sqlite:///" + quote(path.as_posix(), safe="/:")

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

    def _hook_failed(self, plugin_id: str, error: dict[str, Any]) -> None:
        entry = self._entries.get(plugin_id)
        if entry is not None:
            entry.error = error

    # ==================== events and filters ====================

    def _deliverer(
        self, entry: InstalledPlugin, plugin: Plugin
    ) -> Callable[[EventEnvelope], Awaitable[None]]:
        events = entry.events

        async def deliver(envelope: EventEnvelope) -> None:
            name = envelope["name"]
            if name not in events:
                return
            # Each plugin gets its own copy: one changing device_data in place
            # must not change what the next plugin sees.
            try:
                await plugin.dispatch(name, copy.deepcopy(envelope["payload"]))
            except Exception as exc:  # a payload the event cannot carry
                entry.error = {"phase": "event", "message": f"{name}: {exc}", "at": _now()}
                raise

        deliver.__qualname__ = f"plugin {entry.id}"
        return deliver

    async def _run_filters(self, name: str, value: Any) -> Any:
        chain = self._chains.get(name)
        if chain is None:
            return value
        return await chain.apply(value)

    def _rebuild_filters(self) -> None:
        """One chain per filter name across every enabled plugin (install order, priority)."""
        handlers: dict[str, list[RegisteredHandler]] = {}
        for entry in self._entries.values():
            plugin = entry.plugin
            if not entry.enabled or plugin is None:
                continue
            for name in plugin.hooks.filter_names():
                handlers.setdefault(name, []).extend(plugin.hooks.filters(name))
        for chain in self._chains.values():
            chain.retire()
        self._chains = {
            name: HandlerChain(name, "filter", chained, None) for name, chained in handlers.items()
        }


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
