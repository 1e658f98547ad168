"""Checking a webhook delivery from Ops-Center, for the program that receives it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .header import DELIVERY_HEADER, SIGNATURE_HEADER, SignatureError
from .message import DEFAULT_TOLERANCE, verify_signature

if TYPE_CHECKING:
    from .replay import SeenDeliveries


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]``, the name matched without regard to case."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def verify_webhook(
    request_body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    path: str,
    method: str = "POST",
    seen: SeenDeliveries | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook request from Ops-Center; return the event it carries.

    ``request_body`` is the raw body as received (before any JSON parsing),
    ``headers`` the request's headers (any mapping; names are matched without
    regard to case), ``secret`` the webhook's secret, shown when it was
    created, and ``path`` the path and query the request was sent to (with an
    ASGI framework, :func:`~ops_center_sdk.signing.request_path` of the
    scope). Give ``seen`` (one :class:`~ops_center_sdk.signing.SeenDeliveries`
    kept by the receiver) to refuse a captured delivery sent again.

    Raises :class:`SignatureError` when the signature is missing, malformed,
    wrong, stale or replayed, or the body is not the event object. The event
    is ``{"id", "name", "occurred_at", "payload"}``; its ``id`` stays the same
    when a delivery is retried (each try has a new delivery id), so a
    receiver can skip events it has handled.

    With FastAPI::

        seen = SeenDeliveries()

        @app.post("/ops-center-webhook")
        async def receive(request: Request) -> dict:
            try:
                event = verify_webhook(
                    await request.body(), request.headers, SECRET,
                    path=request_path(request.scope), seen=seen,
                )
            except SignatureError as exc:
                raise HTTPException(401, str(exc))
            print(event["name"], event["payload"])
            return {"ok": True}
    """
    verify_signature(
        request_body,
        header_value(headers, SIGNATURE_HEADER),
        secret,
        method=method,
        path=path,
        delivery_id=header_value(headers, DELIVERY_HEADER),
        tolerance=tolerance,
        now=now,
        seen=seen,
    )
    try:
        event = json.loads(request_body)
    except ValueError as exc:
        raise SignatureError(f"the signed body is not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise SignatureError("the signed body is not an Ops-Center event (no string 'id')")
    return event
