"""Firing events and filters at a plugin from a test."""

from __future__ import annotations

from typing import Any

from ..hooks import DispatchReport
from ..plugin import Plugin


async def trigger_hook(
    plugin: Plugin, event: str, *, raise_errors: bool = True, **payload: Any
) -> DispatchReport:
    """Run the plugin's handlers for ``event`` with ``payload`` as keywords.

    >>> await trigger_hook(plugin, "device.created",
    ...                    device_id="device-123", device_data={"name": "Test Device"})

    An unknown event name, or a catalog event missing one of its keywords,
    raises at once. A handler that raises is isolated in production; here its
    exception is raised again (``raise_errors=False`` to get the report instead).
    """
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
