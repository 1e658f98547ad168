"""A plugin run as its own process, driven over the signed wire protocol.

:class:`ProcessRuntime` is the out-of-process :class:`~.runtime.PluginRuntime`.
It starts the plugin's server (:class:`~.plugin_process.PluginProcess`) and
then talks to it only through the ``/_ops/`` endpoints
(:mod:`ops_center_sdk.protocol`), each request signed with the plugin's
secret over its method, path, a new delivery id and its body
(:meth:`~.plugin_process.PluginProcess.request`):

- **lifecycle**: ``POST /_ops/lifecycle/{install|enable|disable|uninstall}``;
- **events**: the bus hands them over one at a time, in the event log's order
  (:mod:`.bus`), and :meth:`ProcessRuntime.deliver` returns once the event is
  settled; an ordered queue with one worker (:class:`~.outbox.Outbox`) sends
  ``POST /_ops/events``, retried with exponential backoff under the same event
  id (the plugin acknowledges an id it handled as a duplicate), given up after
  ``retry.max_attempts`` into the dead letters (:mod:`.dead_letters`). A slow or
  dead plugin holds up only its own cursor in the log;
- **filters**: ``POST /_ops/filters/{name}`` within ``filter_deadline``; on a
  timeout or an error the data goes on unfiltered, and that is logged;
- **routes**: ``/plugins/<id>/...`` proxied to the process (:mod:`.plugin_proxy`);
- **health**: ``GET /_ops/health`` every ``health_interval`` seconds.

Recovery: a process that exits while it should run, or that fails its health
check ``unhealthy_after`` times in a row (it hangs), is killed if need be and
started again with backoff (``restart_base * 2**(n-1)``, capped at
``restart_max``), then enabled again. Meanwhile its events wait in the log; the
events that arrived while it was down are delivered once it is back, in order.
An event that was being handled when the process (or the host) died is sent
again with the same id: the plugin runs it again only if it had not finished it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..hooks import handler as handler_module
from ..plugin_server import CONFIG_ENV
from ..protocol import MAX_BODY_BYTES, MAX_BODY_ENV, SECRET_ENV
from ..route_access import RouteAccess, RouteRule, rules_from_manifest, rules_from_openapi
from ..routes import route_prefix
from .bus import EventEnvelope
from .dead_letters import DeadLetters, envelope_of
from .deliveries import EventDeliveries
from .errors import HostError
from .outbox import RETRYABLE_4XX, Outbox, Outcome, RetryPolicy
from .plugin_errors import PluginProblem, PluginUnavailable
from .plugin_process import PluginProcess, ProcessStartError
from .plugin_proxy import PluginProxy
from .runtime import PROCESS, FilterStep, RemoteFilter
from .sandbox import NoSandbox, Sandbox, View

if TYPE_CHECKING:
    from ..config import Config
    from ..manifest import Manifest

log = logging.getLogger("ops_center_sdk.host.process")


@dataclass(frozen=True)
class ProcessSettings:
    """Timeouts, retries and health checking of plugin processes (all in seconds)."""

    #: From start to ``GET /_ops/health`` answering.
    start_timeout: float = 30.0
    #: From SIGTERM to SIGKILL.
    stop_timeout: float = 5.0
    lifecycle_timeout: float = 60.0
    #: ``POST /_ops/lifecycle/disable`` when the host disables the plugin or stops.
    disable_timeout: float = 10.0
    #: One ``POST /_ops/events`` attempt.
    delivery_timeout: float = 30.0
    #: One ``POST /_ops/filters/{name}``: past it the data goes on unfiltered.
    filter_deadline: float = 2.0
    proxy_timeout: float = 60.0
    health_interval: float = 10.0
    health_timeout: float = 2.0
    #: Failed health checks in a row that make the host restart the process.
    unhealthy_after: int = 3
    #: Retries of an event delivery before it goes to the dead letters.
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    restart_base: float = 0.5
    restart_max: float = 30.0
    #: The largest envelope sent; the process is told the same limit
    #: (``OPS_CENTER_PLUGIN_MAX_BODY_BYTES``) for the bodies it reads.
    max_body_bytes: int = MAX_BODY_BYTES


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _error_message(response: httpx.Response) -> tuple[str | None, str]:
    """The ``code`` and ``message`` of an answer in the error shape (or its text)."""
    try:
        document = response.json()
    except ValueError:
        return None, f"{response.status_code}: {response.text[:300]!r}"
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return (
            str(code) if code else None
        ), f"{response.status_code} {code}: {error.get('message')}"
    return None, f"{response.status_code}: {str(document)[:300]}"


class ProcessRuntime:
    """One plugin in its own process: start, lifecycle, events, filters, health, recovery.

    ``environment()`` is called at every start for the process's environment
    (it carries the plugin's API key and URLs; the runtime adds a new
    protocol secret for each process); ``installed`` says
    whether this installation already ran ``on_install``.
    """

    mode = PROCESS

    def __init__(
        self,
        plugin_id: str,
        folder: Path,
        manifest: Manifest,
        config: Config,
        *,
        overrides: Mapping[str, Any] | None = None,
        environment: Callable[[], Mapping[str, str]],
        view: Callable[[], View] | None = None,
        sandbox: Sandbox | None = None,
        client: httpx.AsyncClient,
        dead_letters: DeadLetters,
        settings: ProcessSettings,
        installed: bool = False,
        on_problem: Callable[[dict[str, Any]], None] | None = None,
        deliveries: EventDeliveries | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.folder = folder
        self.manifest = manifest
        self.config = config
        self.settings = settings
        self.installed = installed
        self.overrides = dict(overrides or {})
        self.dead_letters = dead_letters
        self.deliveries = deliveries or EventDeliveries(capacity=0)
        self._environment = environment
        self._view = view
        self.sandbox = sandbox or NoSandbox("no sandbox was given to this runtime")
        self._last_view: View | None = None
        self._client = client
        self._on_problem = on_problem
        self.state = "stopped"
        self.process: PluginProcess | None = None
        self.health_doc: dict[str, Any] = {}
        self.restarts = 0
        self.health_failures = 0
        self.last_health_at: float | None = None
        self.stats = {"delivered": 0, "duplicates": 0, "dead_lettered": 0, "filter_failures": 0}
        self.wanted = False
        self._crashes = 0
        self._closed = False
        self._up = asyncio.Event()
        self._lock = asyncio.Lock()
        self._outbox = self._new_outbox()
        self._supervisor: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._exit_watch: asyncio.Task[None] | None = None
        #: Its routes and which are public: plugin.yaml's until the process tells its own.
        self._access = RouteAccess(rules_from_manifest(route_prefix(plugin_id), manifest.routes))
        # Filters of plugins loaded earlier run first among equal priorities:
        # this process's chain takes its place when it is installed.
        self._sequence = next(handler_module._sequence)

    # ==================== the PluginRuntime interface ====================

    async def install(self) -> None:
        """Run ``on_install`` once per installation (the host's record remembers)."""
        if self.installed:
            return
        async with self._lock:
            await self._ensure_process()
            await self._lifecycle("install")
        self.installed = True

    async def enable(self) -> None:
        """Start the process if needed, enable the plugin, start the health checks."""
        async with self._lock:
            await self._ensure_process()
            try:
                await self._lifecycle("enable")
                await self._refresh_health()
            except BaseException:
                await self._stop_process()
                self.state = "error"
                raise
            self.wanted = True
            self.state = "running"
            self._up.set()
        self._start_supervisor()
        self._resume_after_shutdown()

    def _resume_after_shutdown(self) -> None:
        """Queue again, first, events an earlier version parked at its stop (reason ``shutdown``).

        Today's host leaves them in the event log instead, after the plugin's cursor.
        """
        for record in self.dead_letters.page(self.plugin_id).items:
            if record.get("reason") == "shutdown":
                self.dead_letters.remove(self.plugin_id, record["event_id"])
                self._outbox.put(envelope_of(record))

    async def disable(self, *, shutdown: bool = False) -> None:
        """Disable the plugin and stop its process.

        An event being sent is abandoned; it stays in the event log after the
        plugin's cursor (sent again at the next start after a ``shutdown``; in
        the dead letters, reason ``disabled``, when the host forgets the cursor).
        """
        self.wanted = False
        self._up.clear()
        await self._stop_supervisor()
        await self._settle_outbox()
        async with self._lock:
            try:
                # A plugin that does not answer (it is why it is unhealthy) is
                # not waited for: it is stopped all the same.
                if self.process is not None and self.process.running and self.state == "running":
                    await self._lifecycle("disable", self.settings.disable_timeout)
            finally:
                await self._stop_process()
                self.state = "stopped"

    async def uninstall(self) -> None:
        """Run ``on_uninstall`` (the plugin deletes its data) and stop the process."""
        async with self._lock:
            await self._ensure_process()
            try:
                await self._lifecycle("uninstall")
            finally:
                await self._stop_process()
                self.state = "stopped"

    async def configure(self, values: Mapping[str, Any]) -> None:
        """Keep the values and, if the process runs, restart it with them."""
        self.config.set_overrides(values)
        self.overrides = dict(values)
        if self.process is not None and self.process.running:
            await self.restart()

    async def deliver(self, envelope: EventEnvelope) -> None:
        """Send the event (with retries); return once it is delivered or dead-lettered.

        Cancelled (the plugin is being reloaded or the host stops), the event
        is taken back if it was not sent yet: the bus sends it again from the
        log. One already on the wire may reach the plugin twice, under the same
        id, and the plugin answers the second "duplicate".
        """
        outbox = self._outbox
        settled = outbox.put(envelope)
        self.deliveries.queued(envelope["id"], self.plugin_id)
        try:
            await asyncio.shield(settled)
        except asyncio.CancelledError:
            outbox.withdraw(envelope)
            raise

    def redeliver(self, envelope: EventEnvelope, on_delivered: Callable[[], object]) -> None:
        settled = self._outbox.put(envelope)

        def delivered(future: asyncio.Future[bool]) -> None:
            if not future.cancelled() and future.result():
                on_delivered()

        settled.add_done_callback(delivered)

    def left_undelivered(self, envelopes: Sequence[EventEnvelope]) -> None:
        for envelope in envelopes:
            self._dead_letter(
                envelope,
                0,
                Outcome.failed("not yet delivered when the plugin was disabled"),
                reason="disabled",
            )

    async def filter(self, name: str, value: Any) -> Any:
        """The plugin's chain ``name`` on ``value``; ``value`` as it was if it fails or is late."""
        process = self.process
        if process is None or not self._up.is_set():
            log.warning(
                "plugin %r is %s: filter %s skipped; the data goes on unfiltered",
                self.plugin_id,
                self.state,
                name,
            )
            return value
        deadline = self.settings.filter_deadline
        try:
            response = await self._post(
                process, f"/_ops/filters/{name}", {"id": uuid.uuid4().hex, "data": value}, deadline
            )
        except httpx.TimeoutException:
            return self._filter_failed(name, value, f"no answer within {deadline:g} s")
        except (httpx.HTTPError, TypeError, ValueError) as exc:
            return self._filter_failed(name, value, f"{type(exc).__name__}: {exc}")
        if response.status_code == 200:
            try:
                document = response.json()
            except ValueError:
                document = None
            if isinstance(document, dict) and "data" in document:
                return document["data"]
            return self._filter_failed(
                name, value, f"answered 200 with an unexpected body {response.text[:200]!r}"
            )
        return self._filter_failed(name, value, _error_message(response)[1])

    def events(self) -> frozenset[str]:
        return frozenset(self.health_doc.get("hooks", {}).get("events", []))

    def filter_names(self) -> list[str]:
        return list(self.health_doc.get("hooks", {}).get("filters", []))

    def filter_steps(self, name: str) -> Sequence[FilterStep]:
        if name not in self.filter_names():
            return []
        priorities = [
            int(stat["priority"])
            for stat in self.health_doc.get("handler_stats", [])
            if stat.get("hook") == name and isinstance(stat.get("priority"), int)
        ]
        # The process runs its whole chain in one call: it takes the place of
        # its highest-priority filter among the other plugins' filters.
        priority = max(priorities, default=10)
        return [RemoteFilter(self.plugin_id, name, priority, self._sequence, self.filter)]

    def routes(self) -> PluginProxy:
        return PluginProxy(
            self.plugin_id,
            self.base_url,
            self._client,
            secret=self._process_secret,
            timeout=self.settings.proxy_timeout,
        )

    def route_access(self) -> RouteAccess:
        return self._access

    def route_paths(self) -> list[dict[str, Any]]:
        return self._access.describe()

    def health(self) -> dict[str, Any]:
        events, filters = self.events(), set(self.filter_names())
        hooks = [
            {
                "kind": "action"
                if s.get("hook") in events
                else "filter"
                if s.get("hook") in filters
                else "lifecycle",
                "hook": s.get("hook"),
                "handler": s.get("handler"),
                "calls": s.get("calls", 0),
                "failures": s.get("failures", 0),
                "timeouts": s.get("timeouts", 0),
            }
            for s in self.health_doc.get("handler_stats", [])
        ]
        return {
            "hooks": hooks,
            "scheduled_tasks": self.health_doc.get("scheduled_tasks", []),
            "process": self.describe_process(),
            "recent_failures": self.health_doc.get("recent_failures", []),
        }

    async def drain(self) -> bool:
        if not len(self._outbox):
            return False
        await self._outbox.join()
        return True

    async def close(self) -> None:
        """Stop everything (what was not delivered stays in the event log)."""
        self._closed = True
        self.wanted = False
        self._up.clear()
        await self._stop_supervisor()
        await self._settle_outbox()
        async with self._lock:
            await self._stop_process()
            self.state = "stopped"

    # ==================== process state ====================

    @property
    def healthy(self) -> bool:
        """Running, enabled and answering its health checks."""
        return self.state == "running" and self._up.is_set()

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "healthy": self.healthy,
            "restarts": self.restarts,
            "process": self.describe_process(),
        }

    def describe_process(self) -> dict[str, Any]:
        """State, PID, URL, restarts and queue of the process, for the plugins API."""
        process = self.process
        return {
            "state": self.state,
            "healthy": self.healthy,
            "pid": process.pid if process is not None and process.running else None,
            "url": process.url if process is not None and process.running else None,
            "restarts": self.restarts,
            "health_failures": self.health_failures,
            "last_health_at": _iso(self.last_health_at),
            "queued": self.queued,
            "dead_letters": self.dead_letters.count(self.plugin_id),
            "sandbox": self.sandbox.describe(self._last_view),
            **self.stats,
        }

    def base_url(self) -> str:
        """The process's URL; the 503 saying why when it cannot answer now."""
        process = self.process
        if process is not None and process.running and self._up.is_set():
            return process.url
        raise PluginUnavailable(
            f"plugin {self.plugin_id!r} is {self.state} (its own process); try again shortly"
        )

    async def check_health(self) -> bool:
        """Check ``GET /_ops/health`` now; True when it answered.

        After ``unhealthy_after`` failures in a row, or when the process has
        exited, the process is restarted (in the background, with backoff).
        """
        if not self.wanted or self._closed:
            return False
        if self._recovery is not None and not self._recovery.done():
            return False
        process = self.process
        if process is None or not process.running:
            self._schedule_recovery("the plugin process is not running")
            return False
        error: str | None = None
        document: Any = None
        try:
            response = await process.request(
                self._client, "GET", "/_ops/health", seconds=self.settings.health_timeout
            )
            if response.status_code == 200:
                document = response.json()
            else:
                error = f"GET /_ops/health answered {_error_message(response)[1]}"
        except httpx.TimeoutException:
            error = f"GET /_ops/health did not answer within {self.settings.health_timeout:g} s"
        except (httpx.HTTPError, ValueError) as exc:
            error = f"GET /_ops/health failed: {type(exc).__name__}: {exc}"
        if error is None and isinstance(document, dict):
            self.health_doc = document
            self.health_failures = 0
            self._crashes = 0
            self.last_health_at = time.time()
            if self.state == "unhealthy":
                self.state = "running"
            if not document.get("enabled") and self.wanted:
                self._schedule_recovery("the plugin process says it is not enabled")
                return False
            return True
        self.health_failures += 1
        self.state = "unhealthy"
        self._problem("health", error or "GET /_ops/health answered something else than JSON")
        if self.health_failures >= self.settings.unhealthy_after:
            self._schedule_recovery(
                f"its health check failed {self.health_failures} times in a row ({error})"
            )
        return False

    async def restart(self) -> None:
        """Start the plugin's code afresh (new code, new config); the old process serves until then.

        The new process is started first: if it fails, the old one keeps
        running and the error is raised. Then the old one is disabled and
        stopped and the new one enabled (when the plugin is enabled).
        """
        async with self._lock:
            fresh = await self._start_process()
            old, enabled = self.process, self.wanted
            self._up.clear()
            if old is not None and old.running and enabled:
                try:
                    await self._lifecycle("disable", self.settings.disable_timeout)
                except HostError as exc:
                    log.warning("plugin %r: disable before restart: %s", self.plugin_id, exc)
            await self._stop_process()
            self._adopt(fresh)
            if not enabled:
                self.state = "stopped"
                await self._stop_process()
                return
            try:
                await self._lifecycle("enable")
                await self._refresh_health()
            except BaseException:
                self.wanted = False
                await self._stop_process()
                self.state = "error"
                raise
            self.state = "running"
            self._up.set()

    # ==================== events ====================

    def _new_outbox(self) -> Outbox[EventEnvelope]:
        return Outbox(
            f"plugin {self.plugin_id}",
            self._send_event,
            policy=self.settings.retry,
            on_give_up=self._dead_letter,
            ready=self._up.wait,
        )

    async def _send_event(self, envelope: EventEnvelope) -> Outcome:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        limit = self.settings.max_body_bytes
        if len(body) > limit:
            return Outcome.failed(
                f"the event is {len(body)} bytes, over the plugin's limit of {limit} bytes",
                status_code=413,
                final=True,
            )
        process = self.process
        if process is None or not process.running:
            if self.wanted:
                self._schedule_recovery("the plugin process is not running")
            return Outcome.failed("the plugin process is not running", counted=False)
        try:
            response = await self._post_body(
                process, "/_ops/events", body, self.settings.delivery_timeout
            )
        except httpx.TimeoutException:
            return Outcome.failed(f"no answer within {self.settings.delivery_timeout:g} s")
        except httpx.TransportError as exc:
            if await self._has_exited(process):
                # Counted: an event that kills the plugin every time must not
                # block its queue forever.
                self._schedule_recovery(_exit_reason(process))
                return Outcome.failed(
                    f"the plugin process exited (status {process.returncode}) during the delivery"
                )
            return Outcome.failed(f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if status == 200:
            try:
                document = response.json()
            except ValueError:
                document = None
            if isinstance(document, dict) and document.get("id") == envelope["id"]:
                answer = document.get("status")
                if answer in ("processed", "duplicate"):
                    self.stats["duplicates" if answer == "duplicate" else "delivered"] += 1
                    self._crashes = 0
                    self._handled(envelope, document)
                    return Outcome.ok(200)
            return Outcome.failed(
                f"the plugin answered 200 with an unexpected body {response.text[:200]!r}",
                status_code=200,
            )
        final = 400 <= status < 500 and status not in RETRYABLE_4XX
        return Outcome.failed(_error_message(response)[1], status_code=status, final=final)

    def _handled(self, envelope: EventEnvelope, answer: dict[str, Any]) -> None:
        """Record what the plugin's answer says of its handlers (``failed``: which raised)."""
        failed = answer.get("failed")
        failures = [
            {"handler": str(f.get("handler")), "error": str(f.get("error"))}
            for f in (failed if isinstance(failed, list) else [])
            if isinstance(f, dict)
        ]
        count = answer.get("failures")
        if not failures and isinstance(count, int) and count > 0:
            # An older plugin side: it says only how many failed.
            failures = [{"handler": "?", "error": f"{count} handlers failed; see its logs"}]
        run = answer.get("handlers_run")
        self.deliveries.finished(
            envelope["id"],
            self.plugin_id,
            handlers_run=run if isinstance(run, int) else None,
            failures=failures,
        )

    @staticmethod
    async def _has_exited(process: PluginProcess) -> bool:
        # A killed process resets its connections a moment before its exit is seen.
        return await process.exited_within(0.5)

    def _dead_letter(
        self, envelope: EventEnvelope, attempts: int, outcome: Outcome, *, reason: str | None = None
    ) -> None:
        if reason is None:
            if outcome.status_code == 413:
                reason = "too_large"
            else:
                reason = "refused" if outcome.final else "failed"
        self.dead_letters.add(
            self.plugin_id,
            envelope,
            attempts=attempts,
            error=outcome.error,
            status_code=outcome.status_code,
            reason=reason,
        )
        self.stats["dead_lettered"] += 1
        self.deliveries.finished(
            envelope["id"], self.plugin_id, error=f"moved to the dead letters: {outcome.error}"
        )
        message = (
            f"event {envelope['name']} ({envelope['id']}) moved to the dead letters "
            f"({reason}, {attempts} attempts): {outcome.error}"
        )
        log.error("plugin %r: %s", self.plugin_id, message)
        self._problem("event", message)

    async def _settle_outbox(self) -> None:
        # What it held is still in the event log, after the plugin's cursor:
        # sent again when the plugin resumes, or dead-lettered by the host when
        # it was disabled for good (:meth:`left_undelivered`).
        await self._outbox.close()
        self._outbox = self._new_outbox()

    def _filter_failed(self, name: str, value: Any, error: str) -> Any:
        self.stats["filter_failures"] += 1
        message = f"filter {name} failed: {error}; the data goes on unfiltered"
        log.error("plugin %r: %s", self.plugin_id, message)
        self._problem("filter", message)
        return value

    # ==================== the process ====================

    async def _ensure_process(self) -> None:
        if self.process is None or not self.process.running:
            await self._stop_process()
            self._adopt(await self._start_process())

    async def _start_process(self) -> PluginProcess:
        """A new process, ready to answer (not yet adopted); the 422/503 error otherwise."""
        previous = self.state
        self.state = "starting"
        # Drawn anew for every process and kept only in memory: never stored,
        # and a request captured before a restart does not verify after it.
        secret = secrets.token_urlsafe(32)
        environment = {
            **self._environment(),
            SECRET_ENV: secret,
            CONFIG_ENV: json.dumps(self.overrides),
            MAX_BODY_ENV: str(self.settings.max_body_bytes),
        }
        view = self._view() if self._view is not None else None
        self._last_view = view
        process = PluginProcess(
            self.plugin_id,
            self.folder,
            environment,
            secret=secret,
            sandbox=self.sandbox,
            view=view,
        )
        try:
            await process.start()
            self.health_doc = await process.wait_ready(
                self._client, within=self.settings.start_timeout
            )
        except ProcessStartError as exc:
            await process.stop(grace=self.settings.stop_timeout)
            self.state = "error" if previous in ("stopped", "error") else previous
            raise _start_problem(self.plugin_id, exc) from None
        except BaseException:
            await process.stop(grace=self.settings.stop_timeout)
            self.state = previous
            raise
        rules = await self._fetch_routes(process)
        if rules is not None:
            self._access = RouteAccess(rules)
        return process

    def _process_secret(self) -> str:
        """The protocol secret of the process now serving (``""`` when none is)."""
        return self.process.secret if self.process is not None else ""

    def _adopt(self, process: PluginProcess) -> None:
        self.process = process
        self.state = "ready"  # up, not enabled yet
        self._exit_watch = asyncio.create_task(
            self._watch_exit(process), name=f"ops-center-plugin-exit:{self.plugin_id}"
        )

    async def _stop_process(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        watch, self._exit_watch = self._exit_watch, None
        if watch is not None:
            watch.cancel()
        if process is None:
            return
        process.stopping = True
        if kill:
            process.kill()
        await process.stop(grace=self.settings.stop_timeout)

    async def _watch_exit(self, process: PluginProcess) -> None:
        await process.wait()
        if process is not self.process or process.stopping or self._closed:
            return
        self._up.clear()
        reason = _exit_reason(process)
        if self.wanted:
            self._schedule_recovery(reason)
        else:
            self.state = "stopped"
            self._problem("process", reason)

    def _schedule_recovery(self, reason: str) -> None:
        if self._closed or not self.wanted:
            return
        if self._recovery is not None and not self._recovery.done():
            return
        self._up.clear()
        self.state = "restarting"
        log.warning("plugin %r: %s; restarting it", self.plugin_id, reason)
        self._problem("process", reason)
        self._recovery = asyncio.create_task(
            self._recover(), name=f"ops-center-plugin-recovery:{self.plugin_id}"
        )

    async def _recover(self) -> None:
        """Start the process again (backoff between failed tries) and enable it."""
        while self.wanted and not self._closed:
            self._crashes += 1
            delay = min(
                self.settings.restart_max, self.settings.restart_base * 2 ** (self._crashes - 1)
            )
            await asyncio.sleep(delay)
            async with self._lock:
                if not self.wanted or self._closed:
                    return
                # A hung process does not deserve a graceful stop.
                await self._stop_process(kill=True)
                try:
                    self._adopt(await self._start_process())
                    await self._lifecycle("enable")
                    await self._refresh_health()
                except HostError as exc:
                    self.state = "restarting"
                    log.error("plugin %r: restart failed: %s", self.plugin_id, exc.message)
                    self._problem("restart", exc.message)
                    continue
                self.restarts += 1
                self.health_failures = 0
                self.state = "running"
                self._up.set()
            log.warning(
                "plugin %r is running again (pid %s, restart %d)",
                self.plugin_id,
                self.process.pid if self.process else None,
                self.restarts,
            )
            return

    def _start_supervisor(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"ops-center-plugin-health:{self.plugin_id}"
            )

    async def _supervise(self) -> None:
        while self.wanted and not self._closed:
            await asyncio.sleep(self.settings.health_interval)
            try:
                await self.check_health()
            except Exception:
                log.exception("plugin %r: health check failed unexpectedly", self.plugin_id)

    async def _stop_supervisor(self) -> None:
        for task in (self._supervisor, self._recovery):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._supervisor = self._recovery = None

    async def _refresh_health(self) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await process.request(
                self._client, "GET", "/_ops/health", seconds=self.settings.health_timeout
            )
            if response.status_code == 200:
                self.health_doc = response.json()
                self.last_health_at = time.time()

    async def _fetch_routes(self, process: PluginProcess) -> list[RouteRule] | None:
        """The plugin's routes, from its app's OpenAPI document; ``None`` if it has none."""
        prefix = route_prefix(self.plugin_id)
        try:
            response = await self._client.get(
                f"{process.url}{prefix}/openapi.json", timeout=self.settings.health_timeout
            )
            paths = response.json().get("paths") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        if not isinstance(paths, dict):
            return None
        return rules_from_openapi(prefix, paths, self.manifest.routes)

    # ==================== the wire ====================

    async def _lifecycle(self, phase: str, seconds: float | None = None) -> None:
        process = self.process
        if process is None:
            raise PluginUnavailable(f"plugin {self.plugin_id!r}: its process is not running")
        limit = self.settings.lifecycle_timeout if seconds is None else seconds
        try:
            response = await self._post(process, f"/_ops/lifecycle/{phase}", {}, limit)
        except httpx.HTTPError as exc:
            message = f"plugin {self.plugin_id!r}: {phase} failed: no answer ({exc!r})"
            raise PluginProblem(
                "plugin_failed",
                message,
                details=[{"field": phase, "message": message, "type": "plugin_error"}],
            ) from None
        if response.status_code != 200:
            _, detail = _error_message(response)
            message = f"plugin {self.plugin_id!r}: {phase} failed: {detail}"
            raise PluginProblem(
                "plugin_failed",
                message,
                details=[{"field": phase, "message": detail, "type": "plugin_error"}],
            )

    async def _post(
        self, process: PluginProcess, path: str, document: Any, seconds: float
    ) -> httpx.Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        return await self._post_body(process, path, body, seconds)

    async def _post_body(
        self, process: PluginProcess, path: str, body: bytes, seconds: float
    ) -> httpx.Response:
        return await process.request(self._client, "POST", path, body, seconds=seconds)

    def _problem(self, phase: str, message: str) -> None:
        if self._on_problem is not None:
            self._on_problem(
                {"phase": phase, "message": message, "at": datetime.now(UTC).isoformat()}
            )


def _exit_reason(process: PluginProcess) -> str:
    return f"the plugin process (pid {process.pid}) exited with status {process.returncode}"


def _start_problem(plugin_id: str, exc: ProcessStartError) -> HostError:
    """The error a failed start answers: what the plugin reported, with file and line."""
    if exc.code in ("plugin_import_error", "invalid_config"):
        detail: dict[str, Any] = {"field": "entrypoint", "message": exc.message, "type": "import"}
        if exc.code == "invalid_config":
            detail.update(field="config", type="config_schema")
        file, line = exc.location
        if file is not None:
            detail.update(file=file, line=line)
        return PluginProblem(exc.code, exc.message, details=[detail])
    return PluginProblem(
        "plugin_start_failed",
        f"plugin {plugin_id!r}: its process did not start: {exc.message}",
        details=[{"field": "process", "message": exc.output[-2000:], "type": "process"}],
    )
