"""``/api/v1/organizations``: the tenants devices and users belong to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from ..store import Record
from .common import (
    Host,
    PageQuery,
    document,
    insert_new,
    new_id,
    new_record,
    only_query,
    permission,
    require_record,
)
from .fields import Name, RecordId, Text
from .strict_json import StrictJSONRoute

KIND = "organizations"

router = APIRouter(prefix="/organizations", tags=["organizations"], route_class=StrictJSONRoute)


class OrganizationCreate(BaseModel):
    """Body of ``POST /organizations``; fields beyond these are kept as given."""

    model_config = ConfigDict(extra="allow")

    id: RecordId | None = None
    name: Name
    description: Text = ""


@router.get(
    "",
    summary="List organizations",
    dependencies=[
        Depends(permission("organizations", "list")),
        Depends(only_query("q")),
    ],
)
async def list_organizations(host: Host, paging: PageQuery, q: str | None = None) -> dict[str, Any]:
    """One page of organizations, oldest first; ``q`` matches part of the name."""
    found = host.store.find(
        KIND, contains={"name": q} if q else None, offset=paging.offset, limit=paging.page_size
    )
    return paging.response(found)


@router.get(
    "/{organization_id}",
    summary="Get an organization",
    dependencies=[Depends(permission("organizations", "get"))],
)
async def get_organization(host: Host, organization_id: str) -> Record:
    """The organization with this id."""
    return require_record(host.store, KIND, "organization", organization_id)


@router.post(
    "",
    status_code=201,
    summary="Create an organization",
    dependencies=[Depends(permission("organizations", "create"))],
)
async def create_organization(host: Host, body: OrganizationCreate) -> Record:
    """Create an organization (emits ``organization.created``)."""
    record = new_record(body.id or new_id("org"), document(body, exclude={"id"}))
    with host.store.transaction():
        insert_new(host.store, KIND, "organization", record)
        host.bus.publish(
            "organization.created", {"organization_id": record["id"], "organization_data": record}
        )
    return record
