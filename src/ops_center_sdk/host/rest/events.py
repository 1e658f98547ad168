"""``POST /api/v1/events``: fire an event by hand (``ops-center-plugin emit``).

``GET /api/v1/events/{id}/deliveries`` then says where its delivery to each
subscribed plugin stands (``emit --wait`` polls it).

Admin key only. The name must be a catalog event (its payload then carries
exactly the catalog's keywords) or an event in an installed plugin's own
namespace (``<plugin-id>.<name>``, any payload). The event goes on the bus as
if the host had emitted it: every enabled plugin subscribed gets it.
"""

from __future__ import annotations

import difflib
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ...events import EVENT_CATALOG, FILTER_CATALOG, is_custom_name
from ..auth import APIKeys, Principal
from ..errors import InvalidRequest, NotFound, PermissionDenied
from .common import Host
from .strict_json import StrictJSONRoute

router = APIRouter(prefix="/events", tags=["events"], route_class=StrictJSONRoute)


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency: the request must carry the admin key."""
    keys: APIKeys = request.app.state.keys
    principal = keys.principal_for(request.headers.get("authorization"))
    if not principal.is_admin:
        raise PermissionDenied(
            f"only the admin key may emit events (this key belongs to {principal.owner})"
        )
    return principal


class EventRequest(BaseModel):
    """Body of ``POST /events``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, examples=["device.metrics_updated"])
    payload: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"device_id": "device-1", "metrics": {"cpu_usage": 97.5}}],
    )


@router.post("", status_code=202, summary="Emit an event", dependencies=[Depends(require_admin)])
async def emit_event(request: Request, host: Host, body: EventRequest) -> dict[str, Any]:
    """Check the event's name and payload, then deliver it to the subscribed plugins.

    The answer is the event's envelope without the payload: ``id``, ``name``,
    ``occurred_at``. Delivery happens in the background.
    """
    plugins = getattr(request.app.state, "plugins", None)
    installed = [entry.id for entry in plugins.installed()] if plugins is not None else []
    _check(body.name, body.payload, installed)
    if plugins is not None:
        envelope = await plugins.emit(body.name, body.payload)
    else:
        envelope = await host.bus.emit(body.name, body.payload)
    return {"id": envelope["id"], "name": envelope["name"], "occurred_at": envelope["occurred_at"]}


@router.get(
    "/{event_id}/deliveries",
    summary="Where the deliveries of an emitted event stand",
    dependencies=[Depends(require_admin)],
)
async def get_deliveries(request: Request, event_id: str) -> dict[str, Any]:
    """Each subscribed plugin's delivery of an event emitted with ``POST /events``.

    ``done`` is true once every delivery is over (``handled``, ``failed`` or
    ``dropped``), ``ok`` once every one was ``handled``. A failed one names
    each handler that raised with its error (``failures``), or says why the
    delivery was given up (``error``). The host keeps the last 1000 events.
    """
    plugins = getattr(request.app.state, "plugins", None)
    found: dict[str, Any] | None = (
        plugins.deliveries.describe(event_id) if plugins is not None else None
    )
    if found is None:
        raise NotFound(
            f"no event {event_id!r} is tracked here: ids come from POST /api/v1/events "
            "(the host keeps the last 1000)",
            details=[{"field": "path.event_id", "message": "unknown event id", "type": "unknown"}],
        )
    return found


def _check(name: str, payload: dict[str, Any], plugin_ids: list[str]) -> None:
    keywords = EVENT_CATALOG.get(name)
    if keywords is None:
        if any(is_custom_name(name, plugin_id) for plugin_id in plugin_ids):
            return
        raise _unknown(name, plugin_ids)
    details = []
    for keyword in keywords:
        if keyword not in payload:
            details.append(
                _detail(keyword, f"{name} carries {keyword!r}; it is missing", "missing")
            )
        elif (problem := _type_problem(keyword, payload[keyword])) is not None:
            details.append(_detail(keyword, problem, "type"))
    for keyword in payload:
        if keyword not in keywords:
            close = difflib.get_close_matches(keyword, keywords, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            details.append(
                _detail(
                    keyword,
                    f"{name} does not carry {keyword!r}{hint} It carries: {', '.join(keywords)}",
                    "unknown",
                )
            )
    if details:
        shown = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        raise InvalidRequest(f"bad payload for {name}: {shown}", details=details)


def _type_problem(keyword: str, value: Any) -> str | None:
    if keyword.endswith("_id") and (not isinstance(value, str) or not value):
        return f"must be a non-empty string, got {value!r}"
    if (keyword.endswith("_data") or keyword == "metrics") and not isinstance(value, dict):
        return f"must be an object, got {type(value).__name__}"
    return None


def _detail(keyword: str, message: str, kind: str) -> dict[str, Any]:
    return {"field": f"body.payload.{keyword}", "message": message, "type": kind}


def _unknown(name: str, plugin_ids: list[str]) -> InvalidRequest:
    if name in FILTER_CATALOG:
        message = f"{name!r} is a filter chain, not an event; it runs when a device is stored"
    else:
        close = difflib.get_close_matches(name, list(EVENT_CATALOG), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        namespaces = ", ".join(f"'{plugin_id}.<name>'" for plugin_id in plugin_ids)
        custom = f" or a plugin's own event ({namespaces})" if namespaces else ""
        message = (
            f"unknown event {name!r}{hint} Emit a catalog event "
            f"({', '.join(sorted(EVENT_CATALOG))}){custom}"
        )
    return InvalidRequest(
        message, details=[{"field": "body.name", "message": message, "type": "unknown_event"}]
    )
