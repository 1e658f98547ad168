"""``APIClient``: the async client of the Ops-Center REST API (``plugin.api``).

One pooled ``httpx.AsyncClient`` is opened on the first call and reused by
every call after it. Every request goes through :meth:`APIClient._exchange`
(one call: the request and its retries, returning the final response), so a
subclass can observe each call there; the testing kit records requests this way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from ..permissions import REQUIRED_PERMISSION
from .errors import (
    APIConfigurationError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    PermissionDeniedError,
    RateLimitedError,
    error_class,
)
from .resources import Alerts, Devices, Organizations, Users, Webhooks
from .retry import RetryPolicy, parse_retry_after

URL_ENV = "OPS_CENTER_API_URL"
KEY_ENV = "OPS_CENTER_API_KEY"
API_PREFIX = "/api/v1"

Params = Mapping[str, Any] | None
Sleep = Callable[[float], Awaitable[None]]


def api_base_url(url: str) -> str:
    """The API root for an Ops-Center URL: ``https://ops.example.com`` -> ``.../api/v1``."""
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


class APIClient:
    """The Ops-Center API: ``devices``, ``users``, ``organizations``, ``alerts``, ``webhooks``.

    >>> api = APIClient("http://127.0.0.1:8000", "my-key")
    >>> devices = await api.devices.list(page=1, status="online")   # doctest: +SKIP

    ``base_url`` and ``api_key`` default to ``OPS_CENTER_API_URL`` and
    ``OPS_CENTER_API_KEY``, read at the first call (the host sets them for the
    plugins it runs); the URL may be the server's root or its ``/api/v1``.

    ``permissions``, when given (a plugin's manifest permissions), limits the
    calls: one they do not allow raises :class:`PermissionDeniedError` before
    any request is sent. ``None`` allows every call (the server still checks
    the key).

    Failed calls raise the typed errors of :mod:`ops_center_sdk.api.errors`.
    Retries follow :mod:`ops_center_sdk.api.retry`: idempotent calls retry on
    429/5xx and connection failures with backoff, honouring ``Retry-After``.
    ``transport`` replaces the network (``httpx.ASGITransport(app)`` talks to
    an app in memory); ``sleep`` replaces ``asyncio.sleep`` between retries.

    Use ``async with APIClient(...) as api:`` or call :meth:`close`; a closed
    client opens a new connection pool if it is used again.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        permissions: Iterable[str] | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self.permissions: frozenset[str] | None = (
            frozenset(permissions) if permissions is not None else None
        )
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._transport = transport
        self._sleep: Sleep = sleep or asyncio.sleep
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._denied = _denied_calls(self.permissions)

        self.devices = Devices(self)
        self.users = Users(self)
        self.organizations = Organizations(self)
        self.alerts = Alerts(self)
        self.webhooks = Webhooks(self)

    # ==================== configuration ====================

    @property
    def base_url(self) -> str | None:
        """The API root calls go to (``.../api/v1``), or None when not configured."""
        url = self._base_url or os.environ.get(URL_ENV)
        return api_base_url(url) if url else None

    @property
    def api_key(self) -> str | None:
        """The key sent as ``Authorization: Bearer ...``, if any."""
        return self._api_key or os.environ.get(KEY_ENV) or None

    def allows(self, resource: str, call: str) -> bool:
        """True when ``permissions`` allow the call ``resource.call`` (e.g. "users", "list")."""
        return (resource, call) not in self._denied

    def authorize(self, resource: str, call: str, *, name: str | None = None) -> None:
        """Raise :class:`PermissionDeniedError` when ``permissions`` forbid ``resource.call``.

        ``name`` is how the error names the call, when it is not ``resource.call``
        (``devices.push_metrics`` needs the catalog's ``metrics.create``).
        """
        permission = self._denied.get((resource, call))
        if permission is None:
            return
        assert self.permissions is not None
        shown = name or f"{resource}.{call}"
        granted = ", ".join(sorted(self.permissions)) or "none"
        raise PermissionDeniedError(
            f"{shown}() needs the permission {permission!r}, which this plugin's "
            f"permissions do not grant (granted: {granted}); add it to plugin.yaml's "
            "'permissions'",
            permission=permission,
            call=shown,
        )

    # ==================== calls ====================

    async def request(
        self, method: str, endpoint: str, *, params: Params = None, json: Any = None
    ) -> Any:
        """Call ``method endpoint`` (below ``/api/v1``) and return the decoded JSON answer.

        The resource objects cover the API; this reaches anything else the
        server offers. Errors are raised as for any call.
        """
        return await self._request(method.upper(), endpoint, params=params, json=json)

    async def _request(
        self, method: str, endpoint: str, *, params: Params = None, json: Any = None
    ) -> Any:
        response = await self._exchange(method, endpoint, params, json)
        if response.status_code < 300:
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        raise self._error(method, endpoint, response)

    async def _exchange(
        self, method: str, endpoint: str, params: Params, json: Any
    ) -> httpx.Response:
        """Send one call, with its retries; return the final response (any status)."""
        http = self._client()
        policy = self.retry_policy
        attempt = 0
        while True:
            try:
                response = await http.request(method, endpoint, params=params, json=json)
            except httpx.TransportError as exc:
                delay = policy.delay_after_error(method, exc, attempt)
                if delay is None:
                    raise self._connection_error(method, endpoint, exc, attempt) from exc
            else:
                if response.status_code < 400:
                    return response
                delay = policy.delay_after_response(method, response, attempt)
                if delay is None:
                    return response
            await self._sleep(delay)
            attempt += 1

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            # A pool belongs to one event loop; a client reused from another
            # loop (a later test's) must not touch the old loop's sockets.
            self._http = self._open()
            self._loop = loop
        return self._http

    def _open(self) -> httpx.AsyncClient:
        base_url = self.base_url
        if base_url is None:
            raise APIConfigurationError(
                f"no Ops-Center URL: set {URL_ENV} (e.g. http://127.0.0.1:8000) or pass "
                "base_url= to APIClient; plugins run by 'ops-center-plugin dev' get it "
                "from the host"
            )
        headers = {"Accept": "application/json", "User-Agent": "ops-center-plugin-sdk"}
        key = self.api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=self.timeout, transport=self._transport
        )

    async def close(self) -> None:
        """Close the connection pool (a later call opens a new one)."""
        http, loop = self._http, self._loop
        self._http = self._loop = None
        # A pool opened on another (finished) event loop cannot be closed from
        # this one; dropping it lets its sockets go with the garbage.
        if http is not None and loop is asyncio.get_running_loop():
            await http.aclose()

    async def __aenter__(self) -> APIClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ==================== errors ====================

    def _error(self, method: str, endpoint: str, response: httpx.Response) -> APIError:
        status = response.status_code
        code, message, details = _error_fields(response)
        if status == 401 and not self.api_key:
            message += f" (this client has no API key: set {KEY_ENV} or pass api_key=)"
        kind = error_class(status)
        common: dict[str, Any] = {
            "status": status,
            "code": code,
            "method": method,
            "endpoint": endpoint,
            "details": details,
        }
        if kind is RateLimitedError:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimitedError(message, retry_after=retry_after, **common)
        if kind is PermissionDeniedError:
            permission = next((d["permission"] for d in details if "permission" in d), None)
            return PermissionDeniedError(message, permission=permission, **common)
        return kind(message, **common)

    def _connection_error(
        self, method: str, endpoint: str, exc: httpx.TransportError, attempt: int
    ) -> APIConnectionError:
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"no answer from {self.base_url} within {self.timeout} s{tries} ({exc!r})",
                method=method,
                endpoint=endpoint,
            )
        return APIConnectionError(
            f"cannot reach Ops-Center at {self.base_url}{tries}: {exc or type(exc).__name__}",
            method=method,
            endpoint=endpoint,
        )


def _denied_calls(permissions: frozenset[str] | None) -> dict[tuple[str, str], str]:
    """Every catalogued call the permissions do not allow, with the permission it needs."""
    if permissions is None:
        return {}
    return {
        call: needed for call, needed in REQUIRED_PERMISSION.items() if needed not in permissions
    }


def _error_fields(response: httpx.Response) -> tuple[str | None, str, list[dict[str, Any]]]:
    """``code``, ``message`` and ``details`` of an error answer, whatever its shape."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            raw_details = error.get("details")
            details = (
                [d for d in raw_details if isinstance(d, dict)]
                if isinstance(raw_details, list)
                else []
            )
            return (
                str(error["code"]) if error.get("code") is not None else None,
                str(error.get("message") or response.reason_phrase),
                details,
            )
        detail = body.get("detail")
        if isinstance(detail, str):
            return None, detail, []
        if isinstance(detail, list):
            return None, "invalid request", [d for d in detail if isinstance(d, dict)]
    text = response.text.strip()
    return None, (text[:300] if text else response.reason_phrase or "error"), []
