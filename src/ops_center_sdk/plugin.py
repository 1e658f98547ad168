"""The :class:`Plugin` object: where a plugin and its runtime meet.

A plugin module creates one ``Plugin``, decorates its handlers with it, and
exports ``app = plugin.create_app()``. Whatever runs the plugin (the app on its
own under uvicorn, the local Ops-Center, the testing kit) drives it through
the methods in the "runtime" section below and nothing else.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import HookError, ManifestError, Problem
from .events import is_custom_name
from .hooks import DispatchReport, HookRegistry
from .hooks.handler import handler_name
from .routes import RouteSpec, check_no_duplicate, make_route
from .workers import WorkerPool

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .api import APIClient
    from .app_events import AppEvents, Lifespan
    from .config import Config
    from .manifest import Manifest, PluginMetadata
    from .scheduler import Clock, Scheduler
    from .storage import Storage

F = TypeVar("F", bound=Callable[..., Any])

MANIFEST_FILE = "plugin.yaml"
_INSTALLED_KEY = "installed"
sdk_log = logging.getLogger("ops_center_sdk.plugin")


def system_namespace(plugin_id: str) -> str:
    """The private storage namespace where the SDK keeps a plugin's own bookkeeping."""
    return f"_sdk.{plugin_id}"


class Plugin:
    """A plugin: its metadata, its handlers and the services it uses.

    >>> plugin = Plugin(id="my-plugin", name="My Plugin", version="1.0.0",
    ...                 description="My awesome plugin", author="Your Name",
    ...                 category="monitoring")
    >>> plugin.metadata.version
    '1.0.0'

    When a ``plugin.yaml`` stands beside the module that creates the plugin (or
    in ``root``), it is read too: its permissions limit ``plugin.api`` and its
    ``config_schema`` validates ``plugin.config``. Its ``id`` and ``version``
    must agree with the constructor's.

    Services are created on first use: ``storage`` (``OPS_CENTER_STORAGE_URL``,
    by default SQLite under ``OPS_CENTER_DATA_DIR``), ``scheduler``, ``config``,
    ``logger`` (``ops_center.plugins.<id>``) and ``api`` (``OPS_CENTER_API_URL``
    and ``OPS_CENTER_API_KEY``). Pass any of them to replace it.

    Plain ``def`` handlers and scheduled tasks run on the plugin's own
    threads (:attr:`workers`): ``workers`` of them, by default
    ``OPS_CENTER_PLUGIN_WORKERS`` or 4; further calls wait in line.
    """

    def __init__(
        self,
        id: str,
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        author: str | None = None,
        category: str | None = None,
        *,
        type: str = "backend",
        permissions: Sequence[str] | None = None,
        config_schema: Mapping[str, Any] | None = None,
        root: str | Path | None = None,
        manifest: Manifest | None = None,
        storage: Storage | None = None,
        scheduler: Scheduler | None = None,
        config: Config | None = None,
        api: APIClient | None = None,
        logger: logging.Logger | None = None,
        clock: Clock | None = None,
        hook_timeout: float = 30.0,
        workers: int | None = None,
        **metadata: Any,
    ) -> None:
        from .manifest import Manifest

        self.root = Path(root) if root is not None else _caller_folder()
        declared: dict[str, Any] = {
            "id": id,
            "name": name if name is not None else id,
            "version": version or "0.1.0",
            "description": description if description is not None else "",
            "author": author if author is not None else "",
            "category": category if category is not None else "monitoring",
            "type": type,
            **metadata,
        }
        if permissions is not None:
            declared["permissions"] = list(permissions)
        if config_schema is not None:
            declared["config_schema"] = dict(config_schema)
        if manifest is None:
            on_disk = self.root / MANIFEST_FILE if self.root is not None else None
            if on_disk is not None and on_disk.is_file():
                explicit = {"id": id} if version is None else {"id": id, "version": version}
                manifest = _merge_with_file(explicit, on_disk)
                given = {"name": name, "description": description, "author": author}
                _warn_about_ignored_metadata({**given, "category": category}, manifest, on_disk)
            else:
                manifest = Manifest.from_dict(declared, source="Plugin(...)")
        self.manifest: Manifest = manifest
        self.id: str = manifest.id
        #: The threads its sync handlers and tasks run on; stopped by :meth:`close`.
        self.workers = WorkerPool(self.id, workers)
        self.hooks = HookRegistry(self.id, default_timeout=hook_timeout, workers=self.workers)
        self.routes: list[RouteSpec] = []
        self._clock = clock
        self._storage = storage
        self._system_storage: Storage | None = None
        self._scheduler = scheduler
        if scheduler is not None:
            scheduler.workers = self.workers
        self._config = config
        self._api = api
        self._logger = logger
        self._app_events: list[AppEvents] = []
        self.installed = False
        self.enabled = False

    @classmethod
    def from_manifest(cls, path: str | Path, **services: Any) -> Plugin:
        """A plugin described by a ``plugin.yaml`` file (or the folder holding one)."""
        from .manifest import load_manifest

        manifest = load_manifest(path)
        location = Path(path)
        root = location if location.is_dir() else location.parent
        return cls(manifest.id, version=manifest.version, root=root, manifest=manifest, **services)

    # ==================== metadata and services ====================

    @property
    def metadata(self) -> PluginMetadata:
        """id, name, version, description, author, category, type and the rest."""
        return self.manifest.metadata

    @property
    def permissions(self) -> tuple[str, ...] | None:
        """The manifest's permissions, or ``None`` when it declares none (no limit)."""
        declared = self.manifest.permissions
        return tuple(declared) if declared is not None else None

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            from .scheduler import SystemClock

            self._clock = SystemClock()
        return self._clock

    @property
    def storage(self) -> Storage:
        """This plugin's key-value storage; no other plugin can see its keys."""
        if self._storage is None:
            from .storage import open_storage

            self._storage = open_storage(self.id, clock=self.clock.time)
        return self._storage

    @property
    def system_storage(self) -> Storage:
        """The SDK's own bookkeeping for this plugin (install flag, scheduler state).

        Same backend as :attr:`storage`, separate namespace: ``storage.clear()``
        does not forget that the plugin is installed or what is scheduled.
        """
        if self._system_storage is None:
            from .storage import Storage

            self._system_storage = Storage(self.storage.backend, system_namespace(self.id))
        return self._system_storage

    @property
    def scheduler(self) -> Scheduler:
        """Background tasks: cron schedules and one-shot runs."""
        if self._scheduler is None:
            from .scheduler import Scheduler

            self._scheduler = Scheduler(
                owner=self.id, clock=self.clock, state=self.system_storage, workers=self.workers
            )
        return self._scheduler

    @property
    def config(self) -> Config:
        """Configuration validated against the manifest's ``config_schema``."""
        if self._config is None:
            from .config import Config

            self._config = Config.from_manifest(self.manifest, self.root)
        return self._config

    @property
    def logger(self) -> logging.Logger:
        """The standard logger ``ops_center.plugins.<id>``."""
        if self._logger is None:
            from .logger import get_plugin_logger

            self._logger = get_plugin_logger(self.id)
        return self._logger

    @property
    def api(self) -> APIClient:
        """The Ops-Center API client, limited to the manifest's permissions."""
        if self._api is None:
            from .api import APIClient

            self._api = APIClient(permissions=self.permissions)
        return self._api

    def use_services(
        self,
        *,
        storage: Storage | None = None,
        scheduler: Scheduler | None = None,
        config: Config | None = None,
        api: APIClient | None = None,
        logger: logging.Logger | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Swap services (the testing kit puts mocks in); ``None`` keeps the current one.

        A scheduler given runs its sync tasks on the plugin's :attr:`workers`.
        """
        if clock is not None:
            self._clock = clock
        if storage is not None:
            self._storage = storage
            self._system_storage = None
        if scheduler is not None:
            scheduler.workers = self.workers
            self._scheduler = scheduler
        if config is not None:
            self._config = config
        if api is not None:
            self._api = api
        if logger is not None:
            self._logger = logger

    # ==================== decorators ====================

    def on_install(self, func: F) -> F:
        """Run ``func`` once, when the plugin is first installed."""
        self.hooks.add_lifecycle("install", func)
        return func

    def on_enable(self, func: F) -> F:
        """Run ``func`` each time the plugin is enabled (and at every start)."""
        self.hooks.add_lifecycle("enable", func)
        return func

    def on_disable(self, func: F) -> F:
        """Run ``func`` when the plugin is disabled or its process stops."""
        self.hooks.add_lifecycle("disable", func)
        return func

    def on_uninstall(self, func: F) -> F:
        """Run ``func`` when the plugin is uninstalled, before its data is removed."""
        self.hooks.add_lifecycle("uninstall", func)
        return func

    def hook(
        self, event: str, priority: int = 10, *, timeout: float | None = None
    ) -> Callable[[F], F]:
        """Register an action handler for ``event``; higher priority runs first.

        >>> @plugin.hook("device.created", priority=10)
        ... async def on_device_created(device_id: str, device_data: dict):
        ...     ...
        """

        _refuse_bare_decorator("hook", event, "'device.created'")

        def register(func: F) -> F:
            self.hooks.add_action(event, func, priority=priority, timeout=timeout)
            return func

        return register

    def filter_hook(
        self, name: str, priority: int = 10, *, timeout: float | None = None
    ) -> Callable[[F], F]:
        """Register a filter: it gets the value and returns the new value."""

        _refuse_bare_decorator("filter_hook", name, "'device.data.process'")

        def register(func: F) -> F:
            self.hooks.add_filter(name, func, priority=priority, timeout=timeout)
            return func

        return register

    def route(
        self,
        path: str,
        methods: Sequence[str] | None = None,
        *,
        public: bool = False,
        **options: Any,
    ) -> Callable[[F], F]:
        """Serve ``func`` at ``/plugins/<id><path>``; options go to FastAPI.

        Through the host the route needs an API key; ``public=True`` serves it
        without one (say ``public: true`` on the route in plugin.yaml too).
        """

        _refuse_bare_decorator("route", path, "'/status'")

        def register(func: F) -> F:
            spec = make_route(path, methods, func, options, public=public)
            check_no_duplicate(spec, self.routes)
            self.routes.append(spec)
            return func

        return register

    # ==================== runtime ====================

    # dispatch, apply_filters and emit hand back the registry's coroutine
    # rather than wrapping it in one more: they sit on every event's path.

    def dispatch(
        self, event: str, payload: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> Coroutine[Any, Any, DispatchReport]:
        """Run this plugin's action handlers for ``event``: ``await plugin.dispatch(...)``."""
        return self.hooks.dispatch(event, payload, **kwargs)

    def apply_filters(self, name: str, value: Any) -> Coroutine[Any, Any, Any]:
        """Run this plugin's filter chain ``name`` on ``value``; await it for the result."""
        return self.hooks.apply_filters(name, value)

    def emit(self, event: str, **payload: Any) -> Coroutine[Any, Any, DispatchReport]:
        """Fire one of the plugin's own events (``<id>.<name>``) to its handlers.

        Catalog events (``device.created``...) come from Ops-Center, not from a
        plugin: emitting one raises :class:`~ops_center_sdk.errors.HookError`
        (in a test, use ``trigger_hook``).
        """
        if not is_custom_name(event, self.id):
            raise HookError(
                f"plugin {self.id!r} can only emit its own events, named "
                f"'{self.id}.<name>', not {event!r}; catalog events come from Ops-Center "
                "(in a test: ops_center_sdk.testing.trigger_hook)"
            )
        return self.hooks.dispatch(event, payload)

    async def install(self) -> None:
        """Run ``on_install`` handlers and remember that the plugin is installed."""
        report = await self.hooks.run_lifecycle("install")
        report.raise_for_errors()
        await self.system_storage.set(_INSTALLED_KEY, True)
        self.installed = True

    async def is_installed(self) -> bool:
        """Whether an earlier run installed this plugin (remembered in storage)."""
        self.installed = bool(await self.system_storage.get(_INSTALLED_KEY, default=False))
        return self.installed

    async def enable(self) -> None:
        """Run ``on_enable`` handlers, start the scheduler, then the app's startup code.

        The app's startup code is what its ``@app.on_event("startup")`` handlers
        and ``create_app(lifespan=...)`` run (:mod:`ops_center_sdk.app_events`);
        a failure there fails the enable, and what had started is stopped.
        """
        if self.enabled:
            return
        report = await self.hooks.run_lifecycle("enable")
        report.raise_for_errors()
        await self.scheduler.start()
        started: list[AppEvents] = []
        try:
            for events in self._app_events:
                await events.startup()
                started.append(events)
        except BaseException:
            try:
                for events in reversed(started):
                    await events.shutdown()
            finally:
                await self.scheduler.stop()
            raise
        self.enabled = True

    async def disable(self) -> None:
        """Run the app's shutdown code and ``on_disable`` handlers, then stop the scheduler."""
        if not self.enabled:
            return
        self.enabled = False
        try:
            try:
                await self._app_shutdown()
            finally:
                report = await self.hooks.run_lifecycle("disable")
        finally:
            await self.scheduler.stop()
        report.raise_for_errors()

    def add_app_events(self, app: Any, lifespan: Lifespan | None = None) -> AppEvents:
        """Run ``app``'s ``on_event`` handlers (and ``lifespan``) as part of enable and disable.

        ``create_app()`` calls this for the app it returns.
        """
        from .app_events import AppEvents

        events = AppEvents(self.id, app, lifespan)
        self._app_events.append(events)
        return events

    async def _app_shutdown(self) -> None:
        """Every app's shutdown code, the last started first; the first failure raises."""
        failures: list[BaseException] = []
        for events in reversed(self._app_events):
            try:
                await events.shutdown()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    async def uninstall(self) -> None:
        """Disable, run ``on_uninstall`` handlers, then delete the plugin's data."""
        await self.disable()
        report = await self.hooks.run_lifecycle("uninstall")
        report.raise_for_errors()
        await self.scheduler.cancel_all()
        await self.storage.clear()
        await self.system_storage.clear()
        self.installed = False

    async def start(self) -> None:
        """Standalone start: install on the first run ever, then enable."""
        if not await self.is_installed():
            await self.install()
        await self.enable()

    async def stop(self) -> None:
        """Standalone stop: disable, then release connections and files."""
        try:
            await self.disable()
        finally:
            await self.close()

    async def halt(self) -> None:
        """Stop without running ``on_disable``: the process is going away, not the plugin.

        A host-managed app calls this at shutdown; the host decides whether
        the plugin is disabled.
        """
        was_enabled, self.enabled = self.enabled, False
        try:
            if was_enabled:
                await self._app_shutdown()
        finally:
            try:
                await self.scheduler.stop()
            finally:
                await self.close()

    async def close(self) -> None:
        """Stop the worker threads; close the API client and the storage backend, if opened.

        A worker thread still running a sync handler that never returns is
        left behind; it does not keep the process from exiting.
        """
        self.workers.shutdown()
        if self._api is not None:
            await self._api.close()
        if self._storage is not None:
            await self._storage.close()

    def router(self) -> APIRouter:
        """The plugin's routes as a FastAPI router under ``/plugins/<id>``, with its liveness.

        ``GET /plugins/<id>/health`` answers :func:`~ops_center_sdk.liveness.liveness_body`
        unless the plugin declares that route itself.
        """
        from .liveness import (
            LIVENESS_PATH,
            LIVENESS_ROUTE_NAME,
            declares_own_health,
            liveness_endpoint,
        )
        from .routes import build_router

        router = build_router(self.id, self.routes)
        if not declares_own_health(self.routes):
            router.add_api_route(
                LIVENESS_PATH,
                liveness_endpoint(self),
                methods=["GET"],
                include_in_schema=False,
                name=LIVENESS_ROUTE_NAME,
            )
        return router

    def create_app(self, *, lifespan: Lifespan | None = None) -> FastAPI:
        """The FastAPI app that serves this plugin (``uvicorn main:app``).

        Run on its own, the app installs the plugin on its first start,
        enables it at startup (starting the scheduler) and disables it at
        shutdown. Routes added after this call are included as well. The
        app's ``@app.on_event("startup"/"shutdown")`` handlers and
        ``lifespan`` (as FastAPI's ``lifespan=``) run after the plugin is
        enabled and before it is disabled, wherever it runs.
        """
        from .app import create_app

        return create_app(self, lifespan=lifespan)

    def __repr__(self) -> str:
        return f"Plugin(id={self.id!r}, version={self.manifest.version!r})"


def _refuse_bare_decorator(decorator: str, argument: object, example: str) -> None:
    """``@plugin.hook`` without its arguments would silently register nothing."""
    if callable(argument):
        raise TypeError(
            f"@plugin.{decorator} needs its arguments: write @plugin.{decorator}({example}) "
            f"above {handler_name(argument)!r}, not @plugin.{decorator}"
        )


def _caller_folder() -> Path | None:
    """The folder of the module that called ``Plugin(...)``, if it is a file."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("ops_center_sdk"):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    filename = frame.f_globals.get("__file__")
    return Path(filename).resolve().parent if filename else None


def _warn_about_ignored_metadata(
    given: dict[str, str | None], manifest: Manifest, path: Path
) -> None:
    """plugin.yaml wins over metadata passed to the constructor; say so when they differ."""
    on_disk = manifest.to_dict()
    for field, value in given.items():
        if value is not None and on_disk.get(field) != value:
            sdk_log.warning(
                "%s: Plugin(%s=%r) differs from plugin.yaml's %r; plugin.yaml is used",
                path,
                field,
                value,
                on_disk.get(field),
            )


def _merge_with_file(declared: dict[str, Any], path: Path) -> Manifest:
    """The manifest on disk, checked against what the constructor declares."""
    from .manifest import load_manifest

    manifest = load_manifest(path)
    problems = [
        Problem(
            field,
            f"plugin.yaml says {on_disk!r} but Plugin(...) says {declared[field]!r}",
            file=str(path),
        )
        for field in ("id", "version")
        if field in declared and (on_disk := getattr(manifest, field)) != declared[field]
    ]
    if problems:
        raise ManifestError("Plugin(...) does not match plugin.yaml", problems)
    return manifest
