"""``/api/v1/alerts``: problems raised about devices or sites, and their lifecycle.

An alert is ``active`` when created, ``acknowledged`` once someone has seen it
and ``resolved`` when it is over. Acknowledging or resolving twice changes
nothing (and announces nothing); acknowledging a resolved alert is a conflict.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..auth import Principal
from ..errors import Conflict
from ..store import Record
from .common import (
    Host,
    PageQuery,
    document,
    insert_new,
    new_id,
    new_record,
    now,
    only_query,
    permission,
    require_record,
)
from .fields import ForeignId, Name, RecordId, Text
from .strict_json import StrictJSONRoute

KIND = "alerts"
Severity = Literal["info", "warning", "error", "critical"]
AlertStatus = Literal["active", "acknowledged", "resolved"]

router = APIRouter(prefix="/alerts", tags=["alerts"], route_class=StrictJSONRoute)


class AlertCreate(BaseModel):
    """Body of ``POST /alerts``: only ``title`` is required; ``severity`` defaults to info.

    An alert records something that happened, so its ``device_id`` is kept as
    given: it may name a device the host does not know, or no longer has (one
    deleted meanwhile, one of another system). An alert without one is about
    something else (a site, a service). Fields beyond these are kept as given.
    """

    model_config = ConfigDict(extra="allow")

    id: RecordId | None = None
    title: Name
    severity: Severity = "info"
    message: Text = ""
    device_id: ForeignId | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


@router.get(
    "",
    summary="List alerts",
    dependencies=[
        Depends(permission("alerts", "list")),
        Depends(only_query("severity", "status", "device_id")),
    ],
)
async def list_alerts(
    host: Host,
    paging: PageQuery,
    severity: Annotated[Severity | None, Query()] = None,
    status: Annotated[AlertStatus | None, Query()] = None,
    device_id: str | None = None,
) -> dict[str, Any]:
    """One page of alerts, oldest first, with optional filters."""
    where = {"severity": severity, "status": status, "device_id": device_id}
    found = host.store.find(
        KIND,
        where={k: v for k, v in where.items() if v is not None},
        offset=paging.offset,
        limit=paging.page_size,
    )
    return paging.response(found)


@router.get(
    "/{alert_id}", summary="Get an alert", dependencies=[Depends(permission("alerts", "get"))]
)
async def get_alert(host: Host, alert_id: str) -> Record:
    """The alert with this id."""
    return require_record(host.store, KIND, "alert", alert_id)


@router.post(
    "",
    status_code=201,
    summary="Raise an alert",
    dependencies=[Depends(permission("alerts", "create"))],
)
async def create_alert(host: Host, body: AlertCreate) -> Record:
    """Raise an alert, ``active`` (emits ``alert.created``)."""
    fields = document(body, exclude={"id"})
    fields.update(status="active", acknowledged_at=None, acknowledged_by=None, resolved_at=None)
    record = new_record(body.id or new_id("alert"), fields)
    with host.store.transaction():
        insert_new(host.store, KIND, "alert", record)
        host.bus.publish("alert.created", {"alert_id": record["id"], "alert_data": record})
    return record


@router.post(
    "/{alert_id}/acknowledge",
    summary="Acknowledge an alert",
)
async def acknowledge_alert(
    host: Host,
    alert_id: str,
    principal: Annotated[Principal, Depends(permission("alerts", "acknowledge"))],
) -> Record:
    """Mark an active alert as seen (emits ``alert.updated``)."""
    alert = require_record(host.store, KIND, "alert", alert_id)
    if alert["status"] == "resolved":
        raise Conflict(f"alert {alert_id!r} is resolved; it cannot be acknowledged")
    if alert["status"] == "acknowledged":
        return alert
    stamp = now()
    alert.update(
        status="acknowledged",
        acknowledged_at=stamp,
        acknowledged_by=principal.owner,
        updated_at=stamp,
    )
    with host.store.transaction():
        host.store.replace(KIND, alert_id, alert)
        host.bus.publish("alert.updated", {"alert_id": alert_id, "alert_data": alert})
    return alert


@router.post(
    "/{alert_id}/resolve",
    summary="Resolve an alert",
    dependencies=[Depends(permission("alerts", "resolve"))],
)
async def resolve_alert(host: Host, alert_id: str) -> Record:
    """Mark an alert as over (emits ``alert.resolved``)."""
    alert = require_record(host.store, KIND, "alert", alert_id)
    if alert["status"] == "resolved":
        return alert
    stamp = now()
    alert.update(status="resolved", resolved_at=stamp, updated_at=stamp)
    with host.store.transaction():
        host.store.replace(KIND, alert_id, alert)
        host.bus.publish("alert.resolved", {"alert_id": alert_id, "alert_data": alert})
    return alert
