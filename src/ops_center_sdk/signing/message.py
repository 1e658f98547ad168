"""The signed message, and signing and checking one request.

Scheme ``v2`` (protocol 2) signs, with HMAC-SHA256 and the shared secret, the
bytes::

    v2 \\n <t> \\n <METHOD> \\n <path and query> \\n <delivery id> \\n <raw body>

(no spaces; ``\\n`` is one line feed). ``<t>`` is the timestamp of the
signature header, ``<path and query>`` the request target exactly as sent on
the request line (``/_ops/lifecycle/enable``, ``/hook?x=1``) and the delivery
id the ``X-Ops-Center-Delivery`` header, new for every request. None of the
first five fields can hold a line feed, so no two requests sign the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .header import (
    DELIVERY_HEADER,
    SCHEME,
    SIGNATURE_HEADER,
    SignatureError,
    parse_delivery_id,
    parse_signature_header,
)

if TYPE_CHECKING:
    from .replay import SeenDeliveries

DEFAULT_TOLERANCE = 300.0

_METHOD = re.compile(r"[A-Z]{1,16}")
_PATH = re.compile(r"/[\x21-\x7e]*")


def new_delivery_id() -> str:
    """A fresh delivery id (32 hex digits)."""
    return uuid.uuid4().hex


def signed_message(
    body: bytes, *, timestamp: int, method: str, path: str, delivery_id: str
) -> bytes:
    """The exact bytes a ``v2`` signature is the HMAC of."""
    head = f"{SCHEME}\n{timestamp}\n{method}\n{path}\n{delivery_id}\n"
    return head.encode("utf-8") + body


def signature_for(
    body: bytes, secret: str, *, timestamp: int, method: str, path: str, delivery_id: str
) -> str:
    """The hex HMAC-SHA256 of :func:`signed_message`, keyed with ``secret``."""
    message = signed_message(
        body, timestamp=timestamp, method=method, path=path, delivery_id=delivery_id
    )
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_delivery(
    body: bytes,
    secret: str,
    *,
    method: str,
    path: str,
    delivery_id: str,
    timestamp: int | None = None,
) -> str:
    """The ``X-Ops-Center-Signature`` value for one request (send ``delivery_id`` beside it).

    ``path`` is the request target as it goes on the wire, query included
    (``httpx.URL(url).raw_path.decode()``).

    >>> sign_delivery(b"{}", "s3cret", method="POST", path="/_ops/lifecycle/enable",
    ...               delivery_id="d-1", timestamp=1700000000)[:16]
    't=1700000000,v2='
    """
    if not secret:
        raise ValueError("signing needs a non-empty secret")
    if not _METHOD.fullmatch(method):
        raise ValueError(f"method {method!r} must be an upper-case HTTP method")
    if not _PATH.fullmatch(path):
        raise ValueError(
            f"path {path!r} must be the request target as sent: '/' then printable ASCII"
        )
    _check_delivery_id(delivery_id)
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = signature_for(
        body, secret, timestamp=stamp, method=method, path=path, delivery_id=delivery_id
    )
    return f"t={stamp},{SCHEME}={digest}"


def _check_delivery_id(delivery_id: str) -> None:
    try:
        parse_delivery_id(delivery_id)
    except SignatureError as exc:
        raise ValueError(str(exc)) from None


def signed_headers(
    body: bytes,
    secret: str,
    *,
    method: str,
    path: str,
    delivery_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Both headers of a signed request, with a new delivery id unless one is given.

    >>> headers = signed_headers(b"{}", "s3cret", method="POST", path="/_ops/events")
    >>> sorted(headers)
    ['X-Ops-Center-Delivery', 'X-Ops-Center-Signature']
    """
    delivery = new_delivery_id() if delivery_id is None else delivery_id
    signature = sign_delivery(
        body, secret, method=method, path=path, delivery_id=delivery, timestamp=timestamp
    )
    return {SIGNATURE_HEADER: signature, DELIVERY_HEADER: delivery}


def request_path(scope: Mapping[str, Any]) -> str:
    """The path and query of an ASGI request as it was sent: what a sender signed.

    >>> request_path({"raw_path": b"/hook", "query_string": b"x=1", "path": "/hook"})
    '/hook?x=1'
    """
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
    query = scope.get("query_string") or b""
    return f"{path}?{query.decode('latin-1')}" if query else path


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    method: str,
    path: str,
    delivery_id: str | None,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    seen: SeenDeliveries | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs this request with ``secret``.

    ``body`` is the raw bytes received (before any JSON parsing), ``method``,
    ``path`` (with the query) and ``delivery_id`` (the ``X-Ops-Center-Delivery``
    header) those of the request received. A timestamp more than ``tolerance``
    seconds from ``now`` is refused. Several ``v2=`` entries are allowed (a
    secret being rotated); one match is enough, and every one is compared in
    constant time. With ``seen``, an authentic request whose delivery id was
    accepted before is refused as a replay.
    """
    if not secret:
        raise SignatureError("no secret is configured to check signatures with")
    parsed = parse_signature_header(header)
    delivery = parse_delivery_id(delivery_id)
    current = time.time() if now is None else now
    age = current - parsed.timestamp
    if abs(age) > tolerance:
        raise SignatureError(
            f"the signature's timestamp is {abs(age):.0f} s away from now "
            f"(at most {tolerance:.0f} s allowed)"
        )
    expected = signature_for(
        body,
        secret,
        timestamp=parsed.timestamp,
        method=method,
        path=path,
        delivery_id=delivery,
    ).encode("ascii")
    matched = False
    for candidate in parsed.signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("ascii"))
    if not matched:
        raise SignatureError(
            f"the signature does not match this request ({method} {_short(path)}, "
            f"delivery {delivery!r}, {len(body)} bytes of body)"
        )
    if seen is not None:
        seen.claim(
            delivery,
            timestamp=parsed.timestamp,
            expires_at=parsed.timestamp + tolerance,
            now=current,
        )


def _short(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else path[:limit] + "..."
