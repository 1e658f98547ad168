"""Firing events and filters at a plugin from a test."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ..api import NotFoundError, ValidationError
from ..hooks import DispatchReport
from ..plugin import Plugin
from .api import MockAPIClient

log = logging.getLogger("ops_center_sdk.testing")


async def trigger_hook(
    plugin: Plugin, event: str, *, raise_errors: bool = True, **payload: Any
) -> DispatchReport:
    """Run the plugin's handlers for ``event`` with ``payload`` as keywords.

    >>> await trigger_hook(plugin, "device.created",
    ...                    device_id="device-123", device_data={"name": "Test Device"})

    An unknown event name, or a catalog event missing one of its keywords,
    raises at once. A handler that raises is isolated in production; here its
    exception is raised again (``raise_errors=False`` to get the report instead).

    The in-memory Ops-Center behind ``plugin.api`` is kept consistent with
    the event, as the real host would be when it emits it: before
    ``device.created`` or ``device.updated`` the device exists there (made from
    ``device_data`` if it did not), before ``device.deleted`` it is gone.

    ``device.deleted`` carries the record as it was; given only ``device_id``,
    its ``device_data`` is the device the in-memory Ops-Center held (or just
    ``{"id": device_id}`` when it held none), as the host would send it.
    """
    deleted = await _mirror_on_mock_host(plugin, event, payload)
    device_id = payload.get("device_id")
    if event == "device.deleted" and "device_data" not in payload and isinstance(device_id, str):
        payload["device_data"] = deleted if deleted is not None else {"id": device_id}
    report = await plugin.dispatch(event, payload)
    if raise_errors:
        report.raise_for_errors()
    return report


async def trigger_filter(plugin: Plugin, name: str, data: Any, *, raise_errors: bool = True) -> Any:
    """Run the plugin's filter chain ``name`` on ``data`` and return the result.

    In production a filter that raises or returns ``None`` is skipped (the
    value goes on unchanged); here that raises, so the test sees the bug
    (``raise_errors=False`` for the production behaviour).
    """
    if not raise_errors:
        return await plugin.apply_filters(name, data)
    value, report = await plugin.hooks.apply_filters_with_report(name, data)
    report.raise_for_errors()
    return value


async def _mirror_on_mock_host(
    plugin: Plugin, event: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """Make the mock Ops-Center agree with the event; returns the device a deletion removed."""
    api = plugin.api
    device_id = payload.get("device_id")
    if not isinstance(api, MockAPIClient) or not isinstance(device_id, str):
        return None
    admin = api.admin()
    if event in ("device.created", "device.updated"):
        data = payload.get("device_data")
        try:
            await admin.devices.get(device_id)
        except NotFoundError:
            fields = dict(data) if isinstance(data, Mapping) else {}
            try:
                await admin.devices.create({"name": device_id, **fields, "id": device_id})
            except ValidationError as exc:
                log.debug("device %r not mirrored on the mock Ops-Center: %s", device_id, exc)
    elif event == "device.deleted":
        try:
            record = await admin.devices.get(device_id)
        except NotFoundError:
            return None
        with contextlib.suppress(NotFoundError):
            await admin.devices.delete(device_id)
        return record
    return None
