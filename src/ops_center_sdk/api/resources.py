"""The API's resources as seen from ``plugin.api``: one object per resource.

``list(...)`` returns the items of one page (``page`` from 1; ``page_size``
from 1, the server's default 50, and a size above the server's maximum, 1,000,
is served as that maximum) with the resource's filters; ``iterate(...)`` walks
every page, whatever size the server used. ``get`` of an id that does not exist
raises :class:`~ops_center_sdk.api.errors.NotFoundError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from .client import APIClient

Record = dict[str, Any]

#: Page size ``iterate`` asks for unless told otherwise.
ITERATE_PAGE_SIZE = 100


def _query(page: int, page_size: int | None, filters: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"page": page}
    if page_size is not None:
        params["page_size"] = page_size
    for name, value in filters.items():
        if value is None:
            continue
        params[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return params


def _body(data: Mapping[str, Any], call: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"{call}() takes a dict of fields, not {type(data).__name__}")
    return dict(data)


class Resource:
    """The calls every resource shares; each subclass exposes the ones the API has."""

    #: Name in the permission catalog and in call names (``devices``).
    name = ""
    #: What one record is called in messages (``device``).
    noun = ""

    def __init__(self, client: APIClient) -> None:
        self._client = client
        self._path = "/" + self.name

    def _item(self, record_id: str) -> str:
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)
        if not isinstance(record_id, str) or not record_id:
            raise ValueError(f"a {self.noun} id must be a non-empty string, not {record_id!r}")
        return f"{self._path}/{quote(record_id, safe='')}"

    async def _get(self, record_id: str) -> Record:
        self._client.authorize(self.name, "get")
        record: Record = await self._client._request("GET", self._item(record_id))
        return record

    async def _list(
        self, page: int, page_size: int | None, filters: Mapping[str, Any]
    ) -> list[Record]:
        self._client.authorize(self.name, "list")
        answer = await self._client._request(
            "GET", self._path, params=_query(page, page_size, filters)
        )
        items: list[Record] = answer["items"]
        return items

    async def iterate(
        self, *, page_size: int = ITERATE_PAGE_SIZE, **filters: Any
    ) -> AsyncIterator[Record]:
        """Every record matching ``filters``, page after page.

        >>> async for device in plugin.api.devices.iterate(status="online"):  # doctest: +SKIP
        ...     print(device["id"])
        """
        self._client.authorize(self.name, "list", name=f"{self.name}.iterate")
        page = 1
        while True:
            answer = await self._client._request(
                "GET", self._path, params=_query(page, page_size, filters)
            )
            items: list[Record] = answer["items"]
            for item in items:
                yield item
            # The server may serve fewer per page than asked (it clamps to its
            # maximum): judge the last page by the size it says it used.
            used = answer.get("page_size")
            served = used if isinstance(used, int) and 0 < used <= page_size else page_size
            total = answer.get("total")
            seen = (page - 1) * served + len(items)
            if not items or len(items) < served or (isinstance(total, int) and seen >= total):
                return
            page += 1

    async def _create(self, data: Mapping[str, Any]) -> Record:
        self._client.authorize(self.name, "create")
        record: Record = await self._client._request(
            "POST", self._path, json=_body(data, f"{self.name}.create")
        )
        return record

    async def _update(self, record_id: str, data: Mapping[str, Any]) -> Record:
        self._client.authorize(self.name, "update")
        record: Record = await self._client._request(
            "PATCH", self._item(record_id), json=_body(data, f"{self.name}.update")
        )
        return record

    async def _delete(self, record_id: str) -> None:
        self._client.authorize(self.name, "delete")
        await self._client._request("DELETE", self._item(record_id))


class Devices(Resource):
    """``plugin.api.devices``: list, get, create, update, delete, iterate, push_metrics."""

    name, noun = "devices", "device"

    async def get(self, device_id: str) -> Record:
        """The device with this id (NotFoundError when there is none)."""
        return await self._get(device_id)

    async def list(
        self,
        page: int = 1,
        page_size: int | None = None,
        *,
        status: str | None = None,
        type: str | None = None,
        organization_id: str | None = None,
        q: str | None = None,
        **filters: Any,
    ) -> list[Record]:
        """One page of devices, filtered by ``status``, ``type``, ``organization_id``.

        ``q`` matches part of the name, in any case.

        >>> devices = await plugin.api.devices.list(page=1, status="online")  # doctest: +SKIP
        """
        return await self._list(
            page,
            page_size,
            {"status": status, "type": type, "organization_id": organization_id, "q": q, **filters},
        )

    async def create(self, data: Mapping[str, Any]) -> Record:
        """Create a device (``name`` required; ``id`` optional, a taken one is a ConflictError)."""
        return await self._create(data)

    async def update(self, device_id: str, data: Mapping[str, Any]) -> Record:
        """Change the fields in ``data``, keep the others; returns the updated device."""
        return await self._update(device_id, data)

    async def delete(self, device_id: str) -> None:
        """Delete the device."""
        await self._delete(device_id)

    async def push_metrics(self, device_id: str, metrics: Mapping[str, Any]) -> Record:
        """Send the device's latest metrics (fires ``device.metrics_updated``)."""
        self._client.authorize("metrics", "create", name="devices.push_metrics")
        answer: Record = await self._client._request(
            "POST", self._item(device_id) + "/metrics", json=_body(metrics, "devices.push_metrics")
        )
        return answer


class Users(Resource):
    """``plugin.api.users``: list, get, create, update, iterate."""

    name, noun = "users", "user"

    async def get(self, user_id: str) -> Record:
        """The user with this id (NotFoundError when there is none)."""
        return await self._get(user_id)

    async def list(
        self,
        page: int = 1,
        page_size: int | None = None,
        *,
        role: str | None = None,
        organization_id: str | None = None,
        email: str | None = None,
        **filters: Any,
    ) -> list[Record]:
        """One page of users, filtered by ``role``, ``organization_id`` or ``email``."""
        return await self._list(
            page,
            page_size,
            {"role": role, "organization_id": organization_id, "email": email, **filters},
        )

    async def create(self, data: Mapping[str, Any]) -> Record:
        """Create a user (``email`` required; ``role`` admin, operator or viewer)."""
        return await self._create(data)

    async def update(self, user_id: str, data: Mapping[str, Any]) -> Record:
        """Change the fields in ``data``, keep the others; returns the updated user."""
        return await self._update(user_id, data)


class Organizations(Resource):
    """``plugin.api.organizations``: list, get, create, iterate."""

    name, noun = "organizations", "organization"

    async def get(self, organization_id: str) -> Record:
        """The organization with this id (NotFoundError when there is none)."""
        return await self._get(organization_id)

    async def list(
        self, page: int = 1, page_size: int | None = None, *, q: str | None = None, **filters: Any
    ) -> list[Record]:
        """One page of organizations; ``q`` searches names."""
        return await self._list(page, page_size, {"q": q, **filters})

    async def create(self, data: Mapping[str, Any]) -> Record:
        """Create an organization (``name`` required)."""
        return await self._create(data)


class Alerts(Resource):
    """``plugin.api.alerts``: list, get, create, acknowledge, resolve, iterate."""

    name, noun = "alerts", "alert"

    async def get(self, alert_id: str) -> Record:
        """The alert with this id (NotFoundError when there is none)."""
        return await self._get(alert_id)

    async def list(
        self,
        page: int = 1,
        page_size: int | None = None,
        *,
        severity: str | None = None,
        status: str | None = None,
        device_id: str | None = None,
        **filters: Any,
    ) -> list[Record]:
        """One page of alerts, filtered by ``severity``, ``status`` or ``device_id``.

        >>> await plugin.api.alerts.list(severity="critical", status="active")  # doctest: +SKIP
        """
        return await self._list(
            page,
            page_size,
            {"severity": severity, "status": status, "device_id": device_id, **filters},
        )

    async def create(self, data: Mapping[str, Any]) -> Record:
        """Raise an alert: only ``title`` is required; ``severity`` defaults to ``"info"``.

        ``device_id`` and ``message`` are optional. A ``device_id`` is kept as
        given, even for a device the host does not have (any more).
        """
        return await self._create(data)

    async def acknowledge(self, alert_id: str) -> Record:
        """Mark the alert as seen; returns it."""
        self._client.authorize(self.name, "acknowledge")
        record: Record = await self._client._request("POST", self._item(alert_id) + "/acknowledge")
        return record

    async def resolve(self, alert_id: str) -> Record:
        """Mark the alert as over; returns it."""
        self._client.authorize(self.name, "resolve")
        record: Record = await self._client._request("POST", self._item(alert_id) + "/resolve")
        return record


class Webhooks(Resource):
    """``plugin.api.webhooks``: list, get, create, delete, iterate."""

    name, noun = "webhooks", "webhook"

    async def get(self, webhook_id: str) -> Record:
        """The webhook with this id (NotFoundError when there is none)."""
        return await self._get(webhook_id)

    async def list(self, page: int = 1, page_size: int | None = None) -> list[Record]:
        """One page of webhooks (their secrets are not shown)."""
        return await self._list(page, page_size, {})

    async def create(self, data: Mapping[str, Any]) -> Record:
        """Register ``{"url": ..., "events": [...]}``; the answer holds the signing ``secret``."""
        return await self._create(data)

    async def delete(self, webhook_id: str) -> None:
        """Stop sending events to the webhook."""
        await self._delete(webhook_id)
