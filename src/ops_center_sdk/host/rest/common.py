"""What every resource module shares: ids, timestamps, paging, body checks."""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ...permissions import REQUIRED_PERMISSION
from ..auth import Principal, require
from ..bus import EventBus
from ..errors import Conflict, InvalidRequest, NotFound
from ..store import HostStore, Record, RecordExists, RecordPage

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
#: The most items one page holds; a larger ``page_size`` is served as this many.
MAX_PAGE_SIZE = 1000
#: Highest page number: keeps every offset inside SQLite's 64-bit integers.
MAX_PAGE = 1_000_000_000
#: Fields the host manages; a body may carry them but they are not taken from it.
READ_ONLY_FIELDS = ("created_at", "updated_at")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_ID = re.compile(ID_PATTERN)


def now() -> str:
    """The current time as an ISO 8601 UTC string (what records carry)."""
    return datetime.now(UTC).isoformat()


def new_id(prefix: str) -> str:
    """A fresh record id such as ``device-3f2a9c0b41de``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def check_id(value: str) -> str:
    """Validate a client-chosen id (letters, digits, ``_ . : -``; at most 128)."""
    if not _ID.match(value):
        raise ValueError(
            "an id is 1 to 128 letters, digits, '_', '.', ':' or '-', starting with a "
            "letter or digit"
        )
    return value


@dataclass(frozen=True)
class Services:
    """The host's parts a route works with."""

    store: HostStore
    bus: EventBus


def services(request: Request) -> Services:
    """FastAPI dependency: the app's store and bus."""
    state = request.app.state
    return Services(state.store, state.bus)


Host = Annotated[Services, Depends(services)]


def permission(resource: str, call: str) -> Callable[[Request], Awaitable[Principal]]:
    """The dependency for the permission the API call ``resource.call`` needs."""
    return require(REQUIRED_PERMISSION[(resource, call)])


@dataclass(frozen=True)
class Paging:
    """Which page a list call asks for."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def window(self, items: Sequence[T]) -> list[T]:
        """This page's part of ``items`` (a listing held whole in memory)."""
        return list(items[self.offset : self.offset + self.page_size])

    def response(self, found: RecordPage) -> dict[str, Any]:
        """The list response body: ``items``, ``page``, ``page_size``, ``total``."""
        return {
            "items": found.items,
            "page": self.page,
            "page_size": self.page_size,
            "total": found.total,
        }


def paging(
    page: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1 (at most 10^9).")
    ] = 1,
    page_size: Annotated[
        int,
        Query(
            ge=1,
            description=f"Items per page, from 1; more than {MAX_PAGE_SIZE} is served as "
            f"{MAX_PAGE_SIZE} (the answer's page_size says how many were used).",
        ),
    ] = DEFAULT_PAGE_SIZE,
) -> Paging:
    """FastAPI dependency: the ``page`` and ``page_size`` query parameters.

    A ``page_size`` above :data:`MAX_PAGE_SIZE` is clamped to it rather than
    refused, as the big REST APIs do: a client asking for "everything on one
    page" gets the largest page, and reads the size used from the answer.
    """
    return Paging(page, min(page_size, MAX_PAGE_SIZE))


PageQuery = Annotated[Paging, Depends(paging)]


def only_query(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters other than ``names`` (and paging).

    A misspelt filter (``stauts=online``) would otherwise be ignored and the
    call would silently return everything.
    """
    allowed = frozenset((*names, "page", "page_size"))

    def check(request: Request) -> None:
        unknown = [name for name in request.query_params if name not in allowed]
        if not unknown:
            return
        known = ", ".join(sorted(allowed))
        details = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            details.append(
                {
                    "field": f"query.{name}",
                    "message": f"unknown query parameter {name!r}{hint} Known: {known}",
                    "type": "unknown_parameter",
                }
            )
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InvalidRequest(details[0]["message"] + more, details=details)

    return check


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` validated from a body dict; errors name fields as ``body.<field>``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def document(model: BaseModel, *, exclude: Iterable[str] = ()) -> Record:
    """A model as the JSON record to store (extra fields kept, as given)."""
    return model.model_dump(mode="json", exclude=set(exclude))


def require_record(store: HostStore, kind: str, noun: str, record_id: str) -> Record:
    """The record, or the 404 error naming it."""
    record = store.get(kind, record_id)
    if record is None:
        raise NotFound(f"{noun} {record_id!r} not found")
    return record


def require_reference(store: HostStore, kind: str, noun: str, field: str, value: str) -> None:
    """A body field that places a record in another must name one that exists (else 422).

    Only for references the host's own data depends on (a device or user in
    an organization). A field recording what something was about, such as
    an alert's ``device_id``, is kept as given and never checked.
    """
    if not store.exists(kind, value):
        message = f"no {noun} has the id {value!r}; create it first or leave {field} out"
        raise InvalidRequest(
            f"invalid request: body.{field}: {message}",
            details=[{"field": f"body.{field}", "message": message, "type": "unknown_reference"}],
        )


def without_read_only(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without the fields the host manages."""
    return {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}


def new_record(record_id: str, fields: Mapping[str, Any]) -> Record:
    """A record as first stored: id, fields, and both timestamps set to now."""
    stamp = now()
    return {"id": record_id, **without_read_only(fields), "created_at": stamp, "updated_at": stamp}


def insert_new(store: HostStore, kind: str, noun: str, record: Record) -> None:
    """Store a new record; a taken id is the 409 error naming it."""
    try:
        store.insert(kind, record)
    except RecordExists:
        raise Conflict(f"{noun} {record['id']!r} already exists") from None


def merged(stored: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH: the stored fields with ``changes`` laid over them (top level only).

    The result has neither the id nor the host's timestamps; an ``id`` in
    ``changes`` must be the record's own.
    """
    check_same_id(changes, stored["id"])
    fields = {**stored, **changes}
    del fields["id"]
    return without_read_only(fields)


def check_same_id(body: Mapping[str, Any], record_id: str) -> None:
    """An ``id`` in an update's body must be the record's own (ids never change)."""
    if body.get("id") not in (None, record_id):
        raise InvalidRequest(
            f"a record's id cannot change (the body says {body['id']!r}, the URL {record_id!r})",
            details=[{"field": "body.id", "message": "does not match the URL", "type": "id"}],
        )
