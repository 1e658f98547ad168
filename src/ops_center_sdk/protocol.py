"""The plugin side of the host protocol: the ``/_ops/`` endpoints of ``create_app()``.

A host that runs a plugin as its own process talks to it only here:

``POST /_ops/events``
    body ``{"id", "name", "occurred_at", "payload"}``; runs the action hooks.
``POST /_ops/filters/{name}``
    body ``{"id", "data"}``; answers ``{"data": ...}`` after the filter chain.
``POST /_ops/lifecycle/{install|enable|disable|uninstall}``
    runs that lifecycle step.
``GET /_ops/health``
    status, id, version, protocol, hooks, scheduled tasks, recent failures.

Every request, health included, must be signed (:mod:`ops_center_sdk.signing`,
protocol 2) with the secret in ``OPS_CENTER_PLUGIN_SECRET``: the signature
covers the method, the path, the delivery id and the body, and each delivery
id is accepted once. The body is read first, with a limit
(``OPS_CENTER_PLUGIN_MAX_BODY_BYTES``, 1 MiB by default: 413 past it), then
the signature is checked; a missing, malformed, wrong, stale or replayed
signature gets 401 and runs nothing. Without a secret the endpoints refuse
everything (503). An event id seen before is acknowledged without running the
hooks again, so the host may retry a delivery safely (under a new delivery id).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import HookError, OpsCenterError
from .request_body import BodyIncomplete, BodyTooLarge, read_body
from .signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SeenDeliveries,
    SignatureError,
    request_path,
    verify_signature,
)

if TYPE_CHECKING:
    from .plugin import Plugin

SECRET_ENV = "OPS_CENTER_PLUGIN_SECRET"
MANAGED_ENV = "OPS_CENTER_MANAGED"
#: The largest body an ``/_ops/`` endpoint reads, in bytes (a host sets it to its own limit).
MAX_BODY_ENV = "OPS_CENTER_PLUGIN_MAX_BODY_BYTES"
#: The default of ``OPS_CENTER_PLUGIN_MAX_BODY_BYTES``: 1 MiB.
MAX_BODY_BYTES = 1024 * 1024
#: Version 2 signs the method, the path and a delivery id besides the timestamp and body.
PROTOCOL_VERSION = 2
#: How long a delivered event id is remembered (the host retries within this).
SEEN_TTL_SECONDS = 48 * 3600
LIFECYCLE_PHASES = ("install", "enable", "disable", "uninstall")

#: Identifies this process among the plugin's past processes: a delivery left
#: "processing" by another instance was cut short by a crash and runs again.
INSTANCE_ID = uuid.uuid4().hex


def is_managed() -> bool:
    """True when a host runs this plugin app and owns its lifecycle."""
    return os.environ.get(MANAGED_ENV, "").strip().lower() in {"1", "true", "yes"}


def max_body_bytes_env() -> int:
    """``OPS_CENTER_PLUGIN_MAX_BODY_BYTES`` (a positive whole number), else 1 MiB."""
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    if not raw:
        return MAX_BODY_BYTES
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise OpsCenterError(f"{MAX_BODY_ENV} must be a positive number of bytes, not {raw!r}")
    return int(raw)


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error shape the host uses too."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _disabled(plugin_id: str) -> JSONResponse:
    return error(
        409, "plugin_disabled", f"plugin {plugin_id!r} is not enabled; enable it, then deliver"
    )


class ProtocolEndpoints:
    """The ``/_ops/`` routes of one plugin's app.

    ``secret`` defaults to ``OPS_CENTER_PLUGIN_SECRET`` (read at each request),
    ``max_body_bytes`` to ``OPS_CENTER_PLUGIN_MAX_BODY_BYTES`` (else 1 MiB);
    ``seen`` holds the delivery ids accepted (a replay is refused) and
    ``clock`` gives the time signatures are judged by.
    """

    def __init__(
        self,
        plugin: Plugin,
        *,
        secret: str | None = None,
        max_body_bytes: int | None = None,
        seen: SeenDeliveries | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plugin = plugin
        self._secret = secret
        self.max_body_bytes = max_body_bytes if max_body_bytes is not None else max_body_bytes_env()
        #: Delivery ids accepted within the signature window: a replay is refused.
        self.seen = seen if seen is not None else SeenDeliveries()
        self._clock = clock
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=20)

    @property
    def secret(self) -> str:
        return self._secret if self._secret is not None else os.environ.get(SECRET_ENV, "")

    def routes(self) -> list[Route]:
        return [
            Route("/_ops/events", self.events, methods=["POST"]),
            Route("/_ops/filters/{name}", self.filters, methods=["POST"]),
            Route("/_ops/lifecycle/{phase}", self.lifecycle, methods=["POST"]),
            Route("/_ops/health", self.health, methods=["GET"]),
        ]

    async def _signed_body(self, request: Request) -> bytes | Response:
        """The body of an authentic request, read with the limit first; else the error answer."""
        secret = self.secret
        if not secret:
            return error(
                503,
                "protocol_disabled",
                f"{SECRET_ENV} is not set: this plugin does not accept host requests",
            )
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            # The rest of the body is never read: the connection goes with the answer.
            return error(413, "body_too_large", str(exc), headers={"Connection": "close"})
        except BodyIncomplete as exc:
            return error(400, "incomplete_body", str(exc))
        signatures = request.headers.getlist(SIGNATURE_HEADER)
        deliveries = request.headers.getlist(DELIVERY_HEADER)
        try:
            for name, values in ((SIGNATURE_HEADER, signatures), (DELIVERY_HEADER, deliveries)):
                if len(values) > 1:
                    raise SignatureError(f"the {name} header is sent {len(values)} times")
            verify_signature(
                body,
                signatures[0] if signatures else None,
                secret,
                method=request.method,
                path=request_path(request.scope),
                delivery_id=deliveries[0] if deliveries else None,
                now=self._clock(),
                seen=self.seen,
            )
        except SignatureError as exc:
            return error(401, "bad_signature", str(exc))
        return body

    @staticmethod
    def _json_object(body: bytes, fields: dict[str, type]) -> dict[str, Any] | Response:
        try:
            document = json.loads(body)
        except ValueError as exc:
            return error(400, "invalid_json", f"the body is not JSON: {exc}")
        if not isinstance(document, dict):
            return error(422, "validation_error", "the body must be a JSON object")
        for field, kind in fields.items():
            if not isinstance(document.get(field), kind):
                return error(
                    422,
                    "validation_error",
                    f"body.{field} is required and must be a {kind.__name__}",
                )
        return document

    async def events(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if isinstance(body, Response):
            return body
        envelope = self._json_object(body, {"id": str, "name": str, "payload": dict})
        if isinstance(envelope, Response):
            return envelope
        event_id, name = envelope["id"], envelope["name"]
        if not self.plugin.enabled:
            return _disabled(self.plugin.id)
        seen = self.plugin.system_storage
        key = f"delivery:{event_id}"
        claim = {"state": "processing", "instance": INSTANCE_ID, "at": time.time()}
        if not await seen.compare_and_set(key, None, claim, ttl=SEEN_TTL_SECONDS):
            earlier = await seen.get(key) or {}
            if earlier.get("state") == "done":
                return JSONResponse({"id": event_id, "status": "duplicate"})
            if earlier.get("instance") == INSTANCE_ID:
                return error(409, "in_progress", f"event {event_id!r} is being handled")
            # A process that crashed while handling it: handle it again.
            if not await seen.compare_and_set(key, earlier, claim, ttl=SEEN_TTL_SECONDS):
                return error(409, "in_progress", f"event {event_id!r} is being handled")
        try:
            report = await self.plugin.dispatch(name, envelope["payload"])
        except (HookError, TypeError) as exc:
            await seen.delete(key)
            return error(422, "invalid_event", str(exc))
        await seen.set(key, {"state": "done", "at": time.time()}, ttl=SEEN_TTL_SECONDS)
        for failure in report.failures:
            self.recent_failures.append(
                {
                    "event": name,
                    "event_id": event_id,
                    "handler": failure.handler,
                    "error": f"{type(failure.exception).__name__}: {failure.exception}",
                    "at": time.time(),
                }
            )
        return JSONResponse(
            {
                "id": event_id,
                "status": "processed",
                "handlers_run": report.handlers_run,
                "failures": len(report.failures),
                "failed": [
                    {
                        "handler": failure.handler,
                        "error": f"{type(failure.exception).__name__}: {failure.exception}",
                    }
                    for failure in report.failures
                ],
            }
        )

    async def filters(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if isinstance(body, Response):
            return body
        document = self._json_object(body, {"id": str})
        if isinstance(document, Response):
            return document
        if "data" not in document:
            return error(422, "validation_error", "body.data is required")
        if not self.plugin.enabled:
            return _disabled(self.plugin.id)
        try:
            data = await self.plugin.apply_filters(request.path_params["name"], document["data"])
        except HookError as exc:
            return error(422, "invalid_filter", str(exc))
        return JSONResponse({"id": document["id"], "data": data})

    async def lifecycle(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if isinstance(body, Response):
            return body
        phase = request.path_params["phase"]
        if phase not in LIFECYCLE_PHASES:
            return error(
                404, "not_found", f"unknown lifecycle step {phase!r}; use {LIFECYCLE_PHASES}"
            )
        step = getattr(self.plugin, phase)
        try:
            await step()
        except (OpsCenterError, Exception) as exc:
            self.recent_failures.append(
                {
                    "event": f"lifecycle.{phase}",
                    "error": f"{type(exc).__name__}: {exc}",
                    "at": time.time(),
                }
            )
            return error(500, "lifecycle_failed", f"{phase} failed: {type(exc).__name__}: {exc}")
        return JSONResponse(
            {"phase": phase, "installed": self.plugin.installed, "enabled": self.plugin.enabled}
        )

    async def health(self, request: Request) -> Response:
        refused = await self._signed_body(request)
        if isinstance(refused, Response):
            return refused
        plugin = self.plugin
        hooks = plugin.hooks
        return JSONResponse(
            {
                "status": "ok" if plugin.enabled else "disabled",
                "id": plugin.id,
                "version": plugin.metadata.version,
                "installed": plugin.installed,
                "enabled": plugin.enabled,
                "instance": INSTANCE_ID,
                "protocol": PROTOCOL_VERSION,
                "hooks": {"events": hooks.events(), "filters": hooks.filter_names()},
                "scheduled_tasks": plugin.scheduler.get_tasks() if plugin.enabled else [],
                "handler_stats": [
                    {
                        "kind": s.kind,
                        "hook": s.hook,
                        "handler": s.handler,
                        "priority": s.priority,
                        "calls": s.calls,
                        "failures": s.failures,
                        "timeouts": s.timeouts,
                    }
                    for s in hooks.stats
                ],
                "recent_failures": list(self.recent_failures),
            }
        )
