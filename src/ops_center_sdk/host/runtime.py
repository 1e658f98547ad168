"""How the host runs a plugin: the :class:`PluginRuntime` interface and the in-process one.

The plugin host drives every plugin through one small interface, whatever
way the plugin runs:

- :class:`InProcessRuntime`: the plugin's code is imported into the host and
  driven through its :class:`~ops_center_sdk.Plugin` object;
- :class:`~ops_center_sdk.host.process_runtime.ProcessRuntime`: the plugin
  runs as its own process and is driven over the signed wire protocol
  (:mod:`ops_center_sdk.protocol`).

The host keeps what is common (the store records, the API key, the bus
subscription, the route table, the cross-plugin filter chains, errors and
logs); the runtime does what depends on where the code runs.

Filter chains run across plugins by priority. An in-process plugin offers
its handlers one by one (:class:`~ops_center_sdk.hooks.RegisteredHandler`),
so they merge with other plugins' handlers into one fast chain; a process
offers its whole chain as one :class:`RemoteFilter` step.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..hooks import DispatchReport, RegisteredHandler
from ..hooks.dispatch import HandlerChain
from ..route_access import RouteAccess, rules_from_code
from ..routes import route_prefix
from .bus import EventEnvelope

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.types import ASGIApp

    from ..config import Config
    from ..manifest import Manifest
    from ..plugin import Plugin

#: ``mode`` of a plugin imported into the host.
IN_PROCESS: Final = "in_process"
#: ``mode`` of a plugin run as its own process.
PROCESS: Final = "process"
MODES = (IN_PROCESS, PROCESS)


@dataclass(frozen=True, eq=False)
class RemoteFilter:
    """A whole filter chain of one plugin, run as one step of a cross-plugin chain."""

    plugin_id: str
    name: str
    priority: int
    sequence: int
    run: Callable[[str, Any], Awaitable[Any]]


FilterStep = RegisteredHandler | RemoteFilter


class PluginRuntime(Protocol):
    """What the host needs of a running plugin, in process or out of it."""

    #: ``in_process`` or ``process``.
    mode: str
    plugin_id: str

    @property
    def manifest(self) -> Manifest:
        """The plugin's plugin.yaml."""

    @property
    def config(self) -> Config:
        """The plugin's config (schema defaults, config.yaml, the host's values)."""

    async def install(self) -> None:
        """Run ``on_install``, unless this installation ran it already."""

    async def enable(self) -> None:
        """Run ``on_enable`` and start what the plugin runs (scheduler, process...)."""

    async def disable(self, *, shutdown: bool = False) -> None:
        """Run ``on_disable`` and stop what :meth:`enable` started.

        ``shutdown``: the host is stopping (the plugin stays enabled on record).
        """

    async def uninstall(self) -> None:
        """Run ``on_uninstall`` and delete the plugin's data."""

    async def configure(self, values: Mapping[str, Any]) -> None:
        """Use the host's new config values (already checked against ``config_schema``)."""

    async def deliver(self, envelope: EventEnvelope) -> DispatchReport | None:
        """Hand the event to the plugin's action hooks; return once it is settled.

        The handlers' report when they ran in process; None for a process
        (the runtime records its outcome in the host's deliveries).

        Settled: handled, or given up (a process plugin's dead letters). The
        bus moves the plugin's cursor in the event log only then.
        """

    def left_undelivered(self, envelopes: Sequence[EventEnvelope]) -> None:
        """The plugin was disabled before it was given these events (oldest first)."""

    def redeliver(self, envelope: EventEnvelope, on_delivered: Callable[[], object]) -> None:
        """Send a dead letter's event again in the background; ``on_delivered()`` once it was.

        Returns at once. A delivery that fails again leaves the dead letter
        (a process plugin's runtime updates it).
        """

    async def filter(self, name: str, value: Any) -> Any:
        """Run the plugin's own filter chain ``name`` on ``value``."""

    def events(self) -> frozenset[str]:
        """The events the plugin has action hooks for."""

    def filter_names(self) -> list[str]:
        """The filter chains the plugin has handlers in."""

    def filter_steps(self, name: str) -> Sequence[FilterStep]:
        """The plugin's part of the cross-plugin chain ``name``."""

    def routes(self) -> APIRouter | ASGIApp:
        """What serves ``/plugins/<id>/...``: a router, or an ASGI app (a proxy)."""

    def route_access(self) -> RouteAccess:
        """The plugin's routes and which of them are public (served without a key)."""

    def route_paths(self) -> list[dict[str, Any]]:
        """``[{"path": "/plugins/<id>/status", "methods": ["GET"], "public": False}, ...]``."""

    def describe(self) -> dict[str, Any]:
        """``state``, ``healthy``, ``restarts`` and (a process) ``process`` details."""

    async def check_health(self) -> bool:
        """Check now that the plugin answers (a process restarts when it keeps failing)."""

    def health(self) -> dict[str, Any]:
        """``hooks`` (per-handler counts), ``scheduled_tasks`` and what the runtime adds."""

    async def drain(self) -> bool:
        """Wait until the events handed to :meth:`deliver` are settled; False if none were."""

    async def close(self) -> None:
        """Release what the runtime holds (the plugin's data stays)."""


class InProcessRuntime:
    """A plugin imported into the host, driven through its ``Plugin`` object."""

    mode = IN_PROCESS

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.plugin_id = plugin.id
        self._access: RouteAccess | None = None
        self._access_of = 0  # routes declared when _access was built (more may follow)
        self._redeliveries: set[asyncio.Task[None]] = set()

    @property
    def manifest(self) -> Manifest:
        return self.plugin.manifest

    @property
    def config(self) -> Config:
        return self.plugin.config

    async def install(self) -> None:
        if not await self.plugin.is_installed():
            await self.plugin.install()

    async def enable(self) -> None:
        await self.plugin.enable()

    async def disable(self, *, shutdown: bool = False) -> None:
        await self.plugin.disable()

    async def uninstall(self) -> None:
        await self.plugin.uninstall()

    async def configure(self, values: Mapping[str, Any]) -> None:
        self.plugin.config.set_overrides(values)

    async def deliver(self, envelope: EventEnvelope) -> DispatchReport:
        # Each plugin gets its own copy: one changing device_data in place
        # must not change what the next plugin sees.
        return await self.plugin.dispatch(envelope["name"], copy.deepcopy(envelope["payload"]))

    def left_undelivered(self, envelopes: Sequence[EventEnvelope]) -> None:
        # An in-process plugin keeps no dead letters: it misses what came while it was off.
        return None

    def redeliver(self, envelope: EventEnvelope, on_delivered: Callable[[], object]) -> None:
        # Its dead letters are from when it ran as a process: its hooks run them now.
        async def run() -> None:
            await self.deliver(envelope)
            on_delivered()

        task = asyncio.get_running_loop().create_task(run(), name=f"redeliver:{envelope['id']}")
        self._redeliveries.add(task)
        task.add_done_callback(self._redeliveries.discard)

    async def filter(self, name: str, value: Any) -> Any:
        return await self.plugin.apply_filters(name, value)

    def events(self) -> frozenset[str]:
        return frozenset(self.plugin.hooks.events())

    def filter_names(self) -> list[str]:
        return self.plugin.hooks.filter_names()

    def filter_steps(self, name: str) -> Sequence[FilterStep]:
        return self.plugin.hooks.filters(name)

    def routes(self) -> APIRouter:
        return self.plugin.router()

    def route_access(self) -> RouteAccess:
        declared = len(self.plugin.routes)
        if self._access is None or self._access_of != declared:
            rules = rules_from_code(
                route_prefix(self.plugin_id), self.plugin.routes, self.plugin.manifest.routes
            )
            self._access, self._access_of = RouteAccess(rules), declared
        return self._access

    def route_paths(self) -> list[dict[str, Any]]:
        return self.route_access().describe()

    def describe(self) -> dict[str, Any]:
        enabled = self.plugin.enabled
        return {"state": "running" if enabled else "stopped", "healthy": enabled, "restarts": 0}

    async def check_health(self) -> bool:
        return self.plugin.enabled

    def health(self) -> dict[str, Any]:
        plugin = self.plugin
        return {
            "hooks": [
                {
                    "kind": s.kind,
                    "hook": s.hook,
                    "handler": s.handler,
                    "calls": s.calls,
                    "failures": s.failures,
                    "timeouts": s.timeouts,
                }
                for s in plugin.hooks.stats
            ],
            "scheduled_tasks": plugin.scheduler.get_tasks(),
        }

    async def drain(self) -> bool:
        return False  # the bus worker delivers, and the bus drains itself

    async def close(self) -> None:
        self.plugin.workers.shutdown()
        await self.plugin.api.close()


class FilterChain:
    """One filter chain across plugins: in-process handlers merged, process steps between.

    With in-process plugins only, this is a single
    :class:`~ops_center_sdk.hooks.dispatch.HandlerChain` and ``apply`` is its
    own (the fast path the in-process host always had).
    """

    def __init__(self, name: str, steps: Sequence[FilterStep]) -> None:
        self.name = name
        ordered = sorted(steps, key=lambda step: (-step.priority, step.sequence))
        self._segments: list[HandlerChain | RemoteFilter] = []
        run: list[RegisteredHandler] = []
        for step in ordered:
            if isinstance(step, RegisteredHandler):
                run.append(step)
                continue
            if run:
                self._segments.append(HandlerChain(name, "filter", run, None))
                run = []
            self._segments.append(step)
        if run:
            self._segments.append(HandlerChain(name, "filter", run, None))
        only = self._segments[0] if len(self._segments) == 1 else None
        self.apply: Callable[[Any], Awaitable[Any]] = (
            only.apply if isinstance(only, HandlerChain) else self._apply_segments
        )

    async def _apply_segments(self, value: Any) -> Any:
        for segment in self._segments:
            if isinstance(segment, HandlerChain):
                value = await segment.apply(value)
            else:
                value = await segment.run(self.name, value)
        return value

    def retire(self) -> None:
        """Settle the in-process handlers' call counts; the chain is no longer used."""
        for segment in self._segments:
            if isinstance(segment, HandlerChain):
                segment.retire()
