"""``/api/v1/users``: the people who use Ops-Center."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict

from ..errors import Conflict
from ..store import HostStore, Record
from .common import (
    Host,
    PageQuery,
    document,
    insert_new,
    merged,
    new_id,
    new_record,
    now,
    only_query,
    permission,
    require_record,
    require_reference,
    validated,
)
from .fields import RecordId
from .strict_json import StrictJSONRoute

KIND = "users"
Role = Literal["admin", "operator", "viewer"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJSONRoute)


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address (name@example.com)")
    return value


Email = Annotated[str, AfterValidator(_email)]


class UserFields(BaseModel):
    """A user's fields; fields beyond these are kept as given."""

    model_config = ConfigDict(extra="allow")

    email: Email
    name: str = ""
    role: Role = "viewer"
    organization_id: RecordId | None = None


class UserCreate(UserFields):
    """Body of ``POST /users``: ``email`` is required, ``id`` optional."""

    id: RecordId | None = None


class UserPatch(BaseModel):
    """Body of ``PATCH /users/{id}``: only the fields to change."""

    model_config = ConfigDict(extra="allow")

    email: str | None = None
    name: str | None = None
    role: Role | None = None
    organization_id: str | None = None


def _check_references(store: HostStore, fields: UserFields, user_id: str) -> None:
    taken = store.find(KIND, where_casefold={"email": fields.email}, limit=2).items
    if any(user["id"] != user_id for user in taken):
        raise Conflict(f"a user with email {fields.email!r} already exists")
    if fields.organization_id is not None:
        require_reference(
            store, "organizations", "organization", "organization_id", fields.organization_id
        )


@router.get(
    "",
    summary="List users",
    dependencies=[
        Depends(permission("users", "list")),
        Depends(only_query("role", "organization_id", "email")),
    ],
)
async def list_users(
    host: Host,
    paging: PageQuery,
    role: Annotated[Role | None, Query()] = None,
    organization_id: str | None = None,
    email: Annotated[str | None, Query(description="The whole address, any case.")] = None,
) -> dict[str, Any]:
    """One page of users, oldest first, with optional filters."""
    where = {"role": role, "organization_id": organization_id}
    found = host.store.find(
        KIND,
        where={k: v for k, v in where.items() if v is not None},
        where_casefold={"email": email} if email else None,
        offset=paging.offset,
        limit=paging.page_size,
    )
    return paging.response(found)


@router.get("/{user_id}", summary="Get a user", dependencies=[Depends(permission("users", "get"))])
async def get_user(host: Host, user_id: str) -> Record:
    """The user with this id."""
    return require_record(host.store, KIND, "user", user_id)


@router.post(
    "",
    status_code=201,
    summary="Create a user",
    dependencies=[Depends(permission("users", "create"))],
)
async def create_user(host: Host, body: UserCreate) -> Record:
    """Create a user (emits ``user.created``)."""
    user_id = body.id or new_id("user")
    _check_references(host.store, body, user_id)
    record = new_record(user_id, document(body, exclude={"id"}))
    with host.store.transaction():
        insert_new(host.store, KIND, "user", record)
        host.bus.publish("user.created", {"user_id": user_id, "user_data": record})
    return record


@router.patch(
    "/{user_id}",
    summary="Update some fields of a user",
    dependencies=[Depends(permission("users", "update"))],
)
async def update_user(host: Host, user_id: str, body: UserPatch) -> Record:
    """Change the fields given, keep the rest (emits ``user.updated``)."""
    stored = require_record(host.store, KIND, "user", user_id)
    fields = validated(UserFields, merged(stored, body.model_dump(exclude_unset=True)))
    _check_references(host.store, fields, user_id)
    record = {
        "id": user_id,
        **document(fields),
        "created_at": stored["created_at"],
        "updated_at": now(),
    }
    with host.store.transaction():
        host.store.replace(KIND, user_id, record)
        host.bus.publish("user.updated", {"user_id": user_id, "user_data": record})
    return record
