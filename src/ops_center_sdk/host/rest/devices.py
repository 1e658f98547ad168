"""``/api/v1/devices``: the devices Ops-Center watches, and their metrics."""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from ..bus import EventBus
from ..errors import Conflict, InvalidRequest, NotFound
from ..store import HostStore, Record, RecordExists
from .common import (
    Host,
    PageQuery,
    check_same_id,
    document,
    merged,
    new_id,
    now,
    only_query,
    permission,
    require_record,
    require_reference,
    validated,
    without_read_only,
)
from .fields import Name, RecordId, Word
from .strict_json import StrictJSONRoute

log = logging.getLogger("ops_center_sdk.host")

KIND = "devices"
FILTER = "device.data.process"
DeviceStatus = Literal["online", "offline", "maintenance", "unknown"]
#: Usual device types; any other short word is accepted too.
DEVICE_TYPES = ("server", "network", "storage", "container", "vm", "iot", "other")

router = APIRouter(prefix="/devices", tags=["devices"], route_class=StrictJSONRoute)


class DeviceFields(BaseModel):
    """A device's fields. Fields beyond these are kept as given (plugins enrich devices)."""

    model_config = ConfigDict(extra="allow")

    name: Name
    type: Word = Field("other", description=f"One of {', '.join(DEVICE_TYPES)}, or any word.")
    status: DeviceStatus = "unknown"
    organization_id: RecordId | None = None
    ip_address: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
        return value


class DeviceCreate(DeviceFields):
    """Body of ``POST /devices``: ``id`` is optional (the host assigns one)."""

    id: RecordId | None = None


class DevicePatch(BaseModel):
    """Body of ``PATCH /devices/{id}``: only the fields to change."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    type: str | None = None
    status: DeviceStatus | None = None
    organization_id: str | None = None
    ip_address: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


#: Fields the host keeps on a device besides the body's: last pushed metrics.
HOST_FIELDS = ("last_metrics", "last_metrics_at")


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The client-settable fields of a body or record."""
    return {k: v for k, v in without_read_only(data).items() if k != "id" and k not in HOST_FIELDS}


async def _filtered(bus: EventBus, store: HostStore, record: Record) -> Record:
    """The record after the ``device.data.process`` chain; unfiltered if the chain breaks it."""
    output = await bus.apply_filters(FILTER, record)
    try:
        if not isinstance(output, dict):
            raise TypeError(f"it returned {type(output).__name__}, not a dict")
        fields = document(DeviceFields.model_validate(_fields(output)))
        organization_id = fields.get("organization_id")
        if organization_id not in (None, record.get("organization_id")) and not store.exists(
            "organizations", organization_id
        ):
            # The body's organization was checked; a filter must not move the
            # device into one that does not exist either.
            raise ValueError(f"it set organization_id to {organization_id!r}, which does not exist")
    except (PydanticValidationError, PydanticSerializationError, TypeError, ValueError) as exc:
        log.error(
            "filter chain %s returned an unusable device for %r (%s); stored unfiltered",
            FILTER,
            record["id"],
            exc,
        )
        return record
    kept = {k: record[k] for k in (*HOST_FIELDS, "created_at", "updated_at") if k in record}
    return {"id": record["id"], **fields, **kept}


async def _save(host: Host, device_id: str, fields: DeviceFields, stored: Record | None) -> Record:
    """Filter, store and announce a device; ``stored`` is its previous record (None: new)."""
    if fields.organization_id is not None:
        require_reference(
            host.store, "organizations", "organization", "organization_id", fields.organization_id
        )
    stamp = now()
    record: Record = {"id": device_id, **document(fields)}
    if stored is not None:
        record.update({k: stored[k] for k in HOST_FIELDS if k in stored})
    record["created_at"] = stamp if stored is None else stored["created_at"]
    record["updated_at"] = stamp
    record = await _filtered(host.bus, host.store, record)
    if stored is None:
        try:
            with host.store.transaction():
                host.store.insert(KIND, record)
                host.bus.publish("device.created", {"device_id": device_id, "device_data": record})
        except RecordExists:
            raise Conflict(f"device {device_id!r} already exists") from None
    else:
        with host.store.transaction():
            if not host.store.replace(KIND, device_id, record):
                raise NotFound(f"device {device_id!r} not found (deleted meanwhile)")
            host.bus.publish("device.updated", {"device_id": device_id, "device_data": record})
    return record


@router.get(
    "",
    summary="List devices",
    dependencies=[
        Depends(permission("devices", "list")),
        Depends(only_query("status", "type", "organization_id", "q")),
    ],
)
async def list_devices(
    host: Host,
    paging: PageQuery,
    status: Annotated[DeviceStatus | None, Query()] = None,
    type: Annotated[str | None, Query()] = None,
    organization_id: Annotated[str | None, Query()] = None,
    q: Annotated[str | None, Query(description="Part of the name, any case.")] = None,
) -> dict[str, Any]:
    """One page of devices, oldest first, with optional filters."""
    where = {"status": status, "type": type, "organization_id": organization_id}
    found = host.store.find(
        KIND,
        where={k: v for k, v in where.items() if v is not None},
        contains={"name": q} if q else None,
        offset=paging.offset,
        limit=paging.page_size,
    )
    return paging.response(found)


@router.get(
    "/{device_id}", summary="Get a device", dependencies=[Depends(permission("devices", "get"))]
)
async def get_device(host: Host, device_id: str) -> Record:
    """The device with this id."""
    return require_record(host.store, KIND, "device", device_id)


@router.post(
    "",
    status_code=201,
    summary="Create a device",
    dependencies=[Depends(permission("devices", "create"))],
)
async def create_device(host: Host, body: DeviceCreate) -> Record:
    """Create a device (``device.data.process`` filters run first; emits ``device.created``)."""
    device_id = body.id or new_id("device")
    if body.id is not None and host.store.exists(KIND, device_id):
        raise Conflict(f"device {device_id!r} already exists")
    fields = validated(DeviceFields, _fields(document(body)))
    return await _save(host, device_id, fields, None)


@router.patch(
    "/{device_id}",
    summary="Update some fields of a device",
    dependencies=[Depends(permission("devices", "update"))],
)
async def update_device(host: Host, device_id: str, body: DevicePatch) -> Record:
    """Change the fields given, keep the rest (emits ``device.updated``)."""
    stored = require_record(host.store, KIND, "device", device_id)
    fields = validated(DeviceFields, _fields(merged(stored, body.model_dump(exclude_unset=True))))
    return await _save(host, device_id, fields, stored)


@router.put(
    "/{device_id}",
    summary="Replace a device",
    dependencies=[Depends(permission("devices", "update"))],
)
async def replace_device(host: Host, device_id: str, body: DeviceCreate) -> Record:
    """Replace every field of the device (emits ``device.updated``)."""
    stored = require_record(host.store, KIND, "device", device_id)
    check_same_id({"id": body.id}, device_id)
    fields = validated(DeviceFields, _fields(document(body)))
    return await _save(host, device_id, fields, stored)


@router.delete(
    "/{device_id}",
    status_code=204,
    summary="Delete a device",
    dependencies=[Depends(permission("devices", "delete"))],
)
async def delete_device(host: Host, device_id: str) -> Response:
    """Delete the device (emits ``device.deleted`` with the record as it was).

    Its alerts are kept: they still name it by ``device_id``.
    """
    with host.store.transaction():
        record = host.store.pop(KIND, device_id)
        if record is None:
            raise NotFound(f"device {device_id!r} not found")
        host.bus.publish("device.deleted", {"device_id": device_id, "device_data": record})
    return Response(status_code=204)


@router.post(
    "/{device_id}/metrics",
    summary="Push metrics of a device",
    dependencies=[Depends(permission("metrics", "create"))],
)
async def push_metrics(
    host: Host,
    device_id: str,
    metrics: Annotated[
        dict[str, Any],
        Body(examples=[{"cpu_usage": 93.5, "memory_usage": 71.2}]),
    ],
) -> dict[str, Any]:
    """Record the device's latest metrics (emits ``device.metrics_updated``)."""
    if not metrics:
        raise InvalidRequest(
            'no metrics: send a JSON object such as {"cpu_usage": 93.5}',
            details=[{"field": "body", "message": "empty object", "type": "too_short"}],
        )
    device = require_record(host.store, KIND, "device", device_id)
    received_at = now()
    device["last_metrics"] = metrics
    device["last_metrics_at"] = received_at
    with host.store.transaction():
        host.store.replace(KIND, device_id, device)
        host.bus.publish("device.metrics_updated", {"device_id": device_id, "metrics": metrics})
    return {"device_id": device_id, "metrics": metrics, "received_at": received_at}
