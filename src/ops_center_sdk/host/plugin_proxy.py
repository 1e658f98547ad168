"""``/plugins/<id>/...`` of a plugin process: a streaming reverse proxy.

The host's route table (:mod:`.plugin_routes`) hands a request under
``/plugins/<id>/`` to this ASGI app, which sends it on to the plugin's own
server at the same path (its app serves its routes under ``/plugins/<id>``
too), through the host's one pooled HTTP client, and streams the answer
back as it comes: request and response bodies are never held whole.

The request arrives checked and stripped by :mod:`.route_guard` (no
``Authorization``, no cookies, no caller headers); the proxy adds the
caller's identity, signed with the plugin's protocol secret over the method,
the path and a new delivery id (:func:`~ops_center_sdk.caller.sign_caller`).

A plugin that is not up (restarting, or stopped) is answered 503 saying
so; one that drops the connection or answers too late, 502 or 504. Either
way in the host's one JSON error shape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.types import Message, Receive, Scope, Send

from ..caller import SCOPE_KEY, Caller, sign_caller
from .errors import error_response
from .route_guard import CREDENTIAL_HEADERS

log = logging.getLogger("ops_center_sdk.host.proxy")

#: Headers that describe one connection, not the message: never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | CREDENTIAL_HEADERS


class PluginProxy:
    """An ASGI app forwarding each request to the plugin process at ``base_url()``.

    ``base_url`` answers the process's URL, or raises the
    :class:`~ops_center_sdk.host.errors.HostError` (503) explaining why the
    plugin cannot answer now. ``secret()`` is the protocol secret of the process
    now serving, which signs the caller's identity.
    """

    def __init__(
        self,
        plugin_id: str,
        base_url: Callable[[], str],
        client: httpx.AsyncClient,
        *,
        secret: Callable[[], str],
        timeout: float = 60.0,
    ) -> None:
        self.plugin_id = plugin_id
        self._base_url = base_url
        self._client = client
        self._secret = secret
        self._timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        base = self._base_url()  # raises the 503 when the plugin is not up
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = base + path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _NOT_FORWARDED]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        request = self._client.build_request(
            scope["method"],
            url,
            headers=headers,
            content=_body(receive),
            timeout=self._timeout,
        )
        caller = scope.get(SCOPE_KEY)
        if isinstance(caller, Caller):
            try:
                signed = sign_caller(
                    caller,
                    self._secret(),
                    method=request.method,
                    path=request.url.raw_path.decode("ascii"),
                )
            except ValueError as exc:  # a method or path that cannot be signed
                await _error(scope, send, 400, "bad_request", f"cannot forward this request: {exc}")
                return
            request.headers.update(signed)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            await _error(
                scope, send, 504, "plugin_timeout", f"plugin {self.plugin_id!r} did not answer"
            )
            return
        except httpx.TransportError as exc:
            await _error(
                scope,
                send,
                502,
                "plugin_unreachable",
                f"plugin {self.plugin_id!r} could not be reached: {type(exc).__name__}: {exc}",
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                # The answer started: all that is left is to end it short.
                log.warning("plugin %r: answer cut short: %s", self.plugin_id, exc)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _error(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    await error_response(status, code, message)(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
