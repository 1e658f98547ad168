"""Signed deliveries: how the host (and webhooks) prove a request came from Ops-Center.

Every host-to-plugin request, and every webhook delivery, carries::

    X-Ops-Center-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>

keyed with a shared secret. A receiver recomputes the HMAC over the raw bytes
it got, compares in constant time, and refuses a timestamp more than
``tolerance`` seconds away (a replayed old delivery).

>>> header = sign_delivery(b'{"id": "evt-1"}', "s3cret", timestamp=1700000000)
>>> verify_signature(b'{"id": "evt-1"}', header, "s3cret", now=1700000010)

Receiving webhooks, :func:`verify_webhook` checks a request and returns the
event it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from .errors import OpsCenterError

SIGNATURE_HEADER = "X-Ops-Center-Signature"
DEFAULT_TOLERANCE = 300.0
_SCHEME = "v1"


class SignatureError(OpsCenterError):
    """A delivery whose signature is missing, malformed, wrong or stale."""


def signature_for(body: bytes, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_delivery(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``X-Ops-Center-Signature`` header value for ``body``."""
    if not secret:
        raise ValueError("signing needs a non-empty secret")
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={stamp},{_SCHEME}={signature_for(body, secret, stamp)}"


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``body`` with ``secret``.

    ``body`` must be the raw bytes received, before any JSON parsing. Several
    ``v1=`` entries are allowed (a secret being rotated); one match is enough.
    """
    if not secret:
        raise SignatureError("no secret is configured to check signatures with")
    if not header:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(
                    f"the signature's timestamp {value!r} is not a number"
                ) from None
        elif key == _SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header must look like 't=<unix seconds>,v1=<hex>'"
        )
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"the signature's timestamp is {abs(current - timestamp):.0f} s away from now "
            f"(at most {tolerance:.0f} s allowed)"
        )
    expected = signature_for(body, secret, timestamp)
    matched = False
    for candidate in candidates:
        # Every candidate is compared, in constant time, whatever the outcome.
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("the signature does not match the body")


def verify_webhook(
    request_body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook request from Ops-Center; return the event it carries.

    ``request_body`` is the raw body as received (before any JSON parsing),
    ``headers`` the request's headers (any mapping; names are matched without
    regard to case) and ``secret`` the webhook's secret, shown when it was
    created. Raises :class:`SignatureError` when the signature is missing,
    wrong or stale, or the body is not the event object. The event is
    ``{"id", "name", "occurred_at", "payload"}``; its ``id`` stays the same
    when a delivery is retried, so a receiver can skip ids it has seen.

    With FastAPI::

        @app.post("/ops-center-webhook")
        async def receive(request: Request) -> dict:
            try:
                event = verify_webhook(await request.body(), request.headers, SECRET)
            except SignatureError as exc:
                raise HTTPException(401, str(exc))
            print(event["name"], event["payload"])
            return {"ok": True}
    """
    header = headers.get(SIGNATURE_HEADER)
    if header is None:
        wanted = SIGNATURE_HEADER.lower()
        header = next((v for k, v in headers.items() if k.lower() == wanted), None)
    verify_signature(request_body, header, secret, tolerance=tolerance, now=now)
    try:
        event = json.loads(request_body)
    except ValueError as exc:
        raise SignatureError(f"the signed body is not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise SignatureError("the signed body is not an Ops-Center event (no string 'id')")
    return event
