"""Who called a plugin route through the host: the caller identity, signed, never the key.

The host checks the caller's API key at ``/plugins/<id>/...`` and hands the
plugin only who the caller is: a :class:`Caller` (``kind`` ``admin``,
``plugin`` or ``key``, the ``id`` of the key's owner and the ``key_id``).
The caller's ``Authorization``, ``Proxy-Authorization`` and ``Cookie``
headers never reach the plugin.

A route handler reads it with :func:`get_caller`, the same way whether the
plugin runs in the host's process or as its own::

    from fastapi import Request
    from ops_center_sdk import get_caller

    @plugin.route("/whoami")
    async def whoami(request: Request):
        caller = get_caller(request)          # None: no key was sent (a public route)
        return {"kind": caller.kind, "id": caller.id} if caller else {"kind": "anonymous"}

To a plugin process the host sends three headers::

    X-Ops-Center-Caller: {"id":"admin","key_id":"admin","kind":"admin"}
    X-Ops-Center-Caller-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256>
    X-Ops-Center-Caller-Delivery: <a new id for every request>

signed with the plugin's protocol secret by scheme ``v2``
(:mod:`ops_center_sdk.signing`) over the method, the path with its query, the
delivery id and, in place of the body (which is streamed, not signed), the
bytes ``ops-center-caller\\n`` + the caller header. The plugin's app
(:class:`CallerCheck`, part of ``create_app()``) checks them, removes them
and keeps the verified caller for :func:`get_caller`; a caller header that
does not verify (unsigned, forged, stale, replayed, or with no secret to check
it) is answered 401 and reaches no handler. In the host's process the host
puts the caller on the request itself; no header is involved.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .signing import (
    SeenDeliveries,
    SignatureError,
    new_delivery_id,
    request_path,
    sign_delivery,
    verify_signature,
)

CALLER_HEADER = "X-Ops-Center-Caller"
CALLER_SIGNATURE_HEADER = "X-Ops-Center-Caller-Signature"
CALLER_DELIVERY_HEADER = "X-Ops-Center-Caller-Delivery"
#: Every header the host sets to tell the plugin who called, lower-case.
CALLER_HEADERS = frozenset(
    name.lower().encode()
    for name in (CALLER_HEADER, CALLER_SIGNATURE_HEADER, CALLER_DELIVERY_HEADER)
)
#: Where the verified caller is kept on the ASGI scope of a request.
SCOPE_KEY = "ops_center.caller"
#: The kinds of caller: the admin key, a plugin's own key, any other key the host issued.
CALLER_KINDS = ("admin", "plugin", "key")
#: Signed in place of the body, so a caller signature can sign nothing else.
_DOMAIN = b"ops-center-caller\n"
_MAX_CALLER_LENGTH = 512
_SECRET_ENV = "OPS_CENTER_PLUGIN_SECRET"


@dataclass(frozen=True)
class Caller:
    """Who called a plugin route: the owner of the API key the host accepted.

    ``kind`` is ``admin`` (the host's admin key), ``plugin`` (a plugin's own
    key; ``id`` is that plugin's id) or ``key`` (another key the host issued;
    ``id`` is its owner). ``key_id`` names the key, never the key itself.
    """

    kind: str
    id: str
    key_id: str

    def to_header(self) -> str:
        """The ``X-Ops-Center-Caller`` value: compact JSON, ASCII only."""
        return json.dumps(
            {"id": self.id, "key_id": self.key_id, "kind": self.kind},
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_header(cls, value: str) -> Caller:
        """Read an ``X-Ops-Center-Caller`` value; :class:`SignatureError` if it is not one."""
        if len(value) > _MAX_CALLER_LENGTH:
            raise SignatureError(f"the {CALLER_HEADER} header is too long")
        try:
            document = json.loads(value)
        except ValueError:
            raise SignatureError(f"the {CALLER_HEADER} header is not JSON") from None
        if not isinstance(document, dict) or set(document) != {"id", "key_id", "kind"}:
            raise SignatureError(f"the {CALLER_HEADER} header must hold kind, id and key_id")
        if not all(isinstance(document[k], str) and document[k] for k in document):
            raise SignatureError(f"the {CALLER_HEADER} header's fields must be non-empty text")
        if document["kind"] not in CALLER_KINDS:
            raise SignatureError(f"the {CALLER_HEADER} header has an unknown kind")
        return cls(document["kind"], document["id"], document["key_id"])


def sign_caller(
    caller: Caller,
    secret: str,
    *,
    method: str,
    path: str,
    delivery_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three caller headers for one request to ``method`` ``path`` (with its query)."""
    value = caller.to_header()
    delivery = new_delivery_id() if delivery_id is None else delivery_id
    signature = sign_delivery(
        _DOMAIN + value.encode("ascii"),
        secret,
        method=method,
        path=path,
        delivery_id=delivery,
        timestamp=timestamp,
    )
    return {
        CALLER_HEADER: value,
        CALLER_SIGNATURE_HEADER: signature,
        CALLER_DELIVERY_HEADER: delivery,
    }


def verify_caller(
    headers: Mapping[str, str],
    secret: str,
    *,
    method: str,
    path: str,
    now: float | None = None,
    seen: SeenDeliveries | None = None,
) -> Caller:
    """The caller the three headers vouch for; :class:`SignatureError` unless they verify.

    ``headers`` maps lower-case names to values (each header sent at most once).
    """
    value = headers.get(CALLER_HEADER.lower())
    if value is None:
        raise SignatureError(f"the {CALLER_HEADER} header is missing")
    if not value.isascii():
        raise SignatureError(f"the {CALLER_HEADER} header is not ASCII")
    verify_signature(
        _DOMAIN + value.encode("ascii"),
        headers.get(CALLER_SIGNATURE_HEADER.lower()),
        secret,
        method=method,
        path=path,
        delivery_id=headers.get(CALLER_DELIVERY_HEADER.lower()),
        now=now,
        seen=seen,
    )
    return Caller.from_header(value)


def get_caller(request: HTTPConnection) -> Caller | None:
    """The caller of a plugin route, verified by the host; ``None`` when no key was sent.

    ``None`` too when the route is called on the plugin's own app without the
    host (``uvicorn main:app``, a test client). Use it as a FastAPI
    dependency as well: ``caller: Caller | None = Depends(get_caller)``.
    """
    caller = request.scope.get(SCOPE_KEY)
    return caller if isinstance(caller, Caller) else None


def without_caller_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (ASGI pairs) minus every caller header."""
    return [(k, v) for k, v in headers if k.lower() not in CALLER_HEADERS]


class CallerCheck:
    """ASGI middleware of a plugin's app: verify the host's caller headers, then drop them.

    A request whose headers verify goes on with its :class:`Caller` on the
    scope (for :func:`get_caller`) and without those headers; one with caller
    headers that do not verify is answered 401 ``bad_caller``. A request
    without caller headers goes on with no caller, unless
    ``required(method, path)`` says it needs one (a host runs the plugin and
    the route is not public): then it is answered 401 ``caller_required``, so
    the host's key check cannot be skipped by calling the process's port.
    ``secret`` defaults to ``OPS_CENTER_PLUGIN_SECRET`` (read at each
    request); each delivery id is accepted once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: Callable[[], str] | None = None,
        required: Callable[[str, str], bool] | None = None,
        seen: SeenDeliveries | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._secret = secret or (lambda: os.environ.get(_SECRET_ENV, ""))
        self._required = required
        self.seen = seen if seen is not None else SeenDeliveries()
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        sent = [(k.lower(), v) for k, v in raw if k.lower() in CALLER_HEADERS]
        scope.pop(SCOPE_KEY, None)
        if sent:
            try:
                caller = self._verify(scope, sent)
            except SignatureError as exc:
                await _refuse("bad_caller", f"caller identity refused: {exc}")(scope, receive, send)
                return
            scope["headers"] = without_caller_headers(raw)
            scope[SCOPE_KEY] = caller
        elif self._required is not None and self._required(scope["method"], scope["path"]):
            message = (
                "an Ops-Center runs this plugin: call its routes through the host, with an API key"
            )
            await _refuse("caller_required", message)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _verify(self, scope: Scope, sent: list[tuple[bytes, bytes]]) -> Caller:
        names = [k for k, _ in sent]
        for name in set(names):
            if (count := names.count(name)) > 1:
                raise SignatureError(f"the {name.decode()} header is sent {count} times")
        secret = self._secret()
        if not secret:
            raise SignatureError(
                f"a {CALLER_HEADER} header was sent, but {_SECRET_ENV} is not set to check it"
            )
        headers: dict[str, Any] = {k.decode("latin-1"): v.decode("latin-1") for k, v in sent}
        return verify_caller(
            headers,
            secret,
            method=scope.get("method", "GET"),
            path=request_path(scope),
            now=self._clock(),
            seen=self.seen,
        )


def _refuse(code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=401)
