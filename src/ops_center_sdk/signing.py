"""Signed deliveries: how the host (and webhooks) prove a request came from Ops-Center.

Every host-to-plugin request, and every webhook delivery, carries::

    X-Ops-Center-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>

keyed with a shared secret. A receiver recomputes the HMAC over the raw bytes
it got, compares in constant time, and refuses a timestamp more than
``tolerance`` seconds away (a replayed old delivery).

>>> header = sign_delivery(b'{"id": "evt-1"}', "s3cret", timestamp=1700000000)
>>> verify_signature(b'{"id": "evt-1"}', header, "s3cret", now=1700000010)
"""

from __future__ import annotations

import hashlib
import hmac
import time

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
