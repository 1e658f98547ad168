"""``/api/v1/webhooks``: external URLs that receive events.

The secret signs deliveries; it is shown once, in the answer to the create
call (generated when the body has none), and never listed afterwards. The
served Ops-Center delivers events to them (:mod:`..webhook_sender`);
``GET /webhooks/{id}/deliveries`` is the delivery log.
"""

from __future__ import annotations

import difflib
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ...events import EVENT_CATALOG
from ..errors import NotFound
from ..store import Record
from ..webhook_sender import DELIVERY_KIND, delivery_page
from .common import (
    Host,
    PageQuery,
    insert_new,
    new_id,
    new_record,
    only_query,
    permission,
    require_record,
)
from .fields import RecordId, Text
from .strict_json import StrictJSONRoute

KIND = "webhooks"

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=StrictJSONRoute)


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL such as https://example.com/hook")
    try:
        parts.port  # noqa: B018 - reading it checks the port is a number in 0-65535
    except ValueError:
        raise ValueError(f"{value!r} has a port that is not a number in 0-65535") from None
    return value


def _event(name: str) -> str:
    if name not in EVENT_CATALOG:
        close = difflib.get_close_matches(name, list(EVENT_CATALOG), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown event {name!r}{hint} Known events: {', '.join(sorted(EVENT_CATALOG))}"
        )
    return name


class WebhookCreate(BaseModel):
    """Body of ``POST /webhooks``. Unknown fields are refused (a misspelt one would be lost)."""

    model_config = ConfigDict(extra="forbid")

    id: RecordId | None = None
    url: Annotated[str, AfterValidator(_url)]
    events: list[Annotated[str, AfterValidator(_event)]] = Field(min_length=1)
    secret: Annotated[str, Field(min_length=8, max_length=256)] | None = None
    description: Text = ""
    active: bool = True


def _public(record: Record) -> Record:
    return {k: v for k, v in record.items() if k != "secret"}


@router.get(
    "",
    summary="List webhooks",
    dependencies=[Depends(permission("webhooks", "list")), Depends(only_query())],
)
async def list_webhooks(host: Host, paging: PageQuery) -> dict[str, Any]:
    """One page of webhooks, oldest first (secrets are not shown)."""
    response = paging.response(host.store.find(KIND, offset=paging.offset, limit=paging.page_size))
    response["items"] = [_public(item) for item in response["items"]]
    return response


@router.get(
    "/{webhook_id}",
    summary="Get a webhook",
    dependencies=[Depends(permission("webhooks", "get"))],
)
async def get_webhook(host: Host, webhook_id: str) -> Record:
    """The webhook with this id (its secret is not shown)."""
    return _public(require_record(host.store, KIND, "webhook", webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    summary="A webhook's delivery log",
    dependencies=[Depends(permission("webhooks", "get")), Depends(only_query("status"))],
)
async def list_deliveries(
    host: Host,
    webhook_id: str,
    paging: PageQuery,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> dict[str, Any]:
    """The webhook's deliveries, newest first.

    Each has ``event_id``, ``event``, ``url``, ``status`` (``pending``,
    ``delivered``, ``failed``), ``status_code`` (the receiver's last answer),
    ``attempts``, ``last_error``, ``created_at``, ``updated_at`` and
    ``delivered_at``.
    """
    require_record(host.store, KIND, "webhook", webhook_id)
    found = delivery_page(
        host.store, webhook_id, status=status, offset=paging.offset, limit=paging.page_size
    )
    return paging.response(found)


@router.post(
    "",
    status_code=201,
    summary="Create a webhook",
    dependencies=[Depends(permission("webhooks", "create"))],
)
async def create_webhook(host: Host, body: WebhookCreate) -> Record:
    """Register a URL for events; the answer carries the signing secret, this once."""
    fields = body.model_dump(exclude={"id"})
    fields["events"] = list(dict.fromkeys(body.events))
    fields["secret"] = body.secret or secrets.token_urlsafe(32)
    record = new_record(body.id or new_id("webhook"), fields)
    insert_new(host.store, KIND, "webhook", record)
    return record


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a webhook",
    dependencies=[Depends(permission("webhooks", "delete"))],
)
async def delete_webhook(host: Host, webhook_id: str) -> Response:
    """Stop sending events to the webhook (its delivery log goes too)."""
    if not host.store.delete(KIND, webhook_id):
        raise NotFound(f"webhook {webhook_id!r} not found")
    for delivery in host.store.find(DELIVERY_KIND, where={"webhook_id": webhook_id}).items:
        host.store.delete(DELIVERY_KIND, delivery["id"])
    return Response(status_code=204)
