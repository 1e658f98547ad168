"""The event catalog: which events Ops-Center emits and which keywords they carry."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from .errors import UnknownEventError

#: Action events and the payload keywords each one carries. A ``*.deleted``
#: event carries the record as it was just before it went (``device_data``).
EVENT_CATALOG: Mapping[str, tuple[str, ...]] = {
    "device.created": ("device_id", "device_data"),
    "device.updated": ("device_id", "device_data"),
    "device.deleted": ("device_id", "device_data"),
    "device.metrics_updated": ("device_id", "metrics"),
    "alert.created": ("alert_id", "alert_data"),
    "alert.updated": ("alert_id", "alert_data"),
    "alert.resolved": ("alert_id", "alert_data"),
    "user.created": ("user_id", "user_data"),
    "user.updated": ("user_id", "user_data"),
    "organization.created": ("organization_id", "organization_data"),
}

#: Filter chains and the keyword of the value they pass along.
FILTER_CATALOG: Mapping[str, tuple[str, ...]] = {
    "device.data.process": ("data",),
}

_EVENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")


def is_custom_name(name: str, plugin_id: str) -> bool:
    """True when ``name`` lives in the plugin's own namespace (``<plugin_id>.<event>``)."""
    return name.startswith(plugin_id + ".") and bool(_EVENT_NAME.match(name))


def payload_keywords(name: str, *, kind: str = "event") -> tuple[str, ...] | None:
    """The keywords a catalog event (or filter) carries, or ``None`` for a custom name."""
    catalog = FILTER_CATALOG if kind == "filter" else EVENT_CATALOG
    return catalog.get(name)


def check_name(name: str, plugin_id: str, *, kind: str = "event") -> tuple[str, ...] | None:
    """Check that a plugin may subscribe to ``name``; return its payload keywords.

    Catalog names return their keywords; names in the plugin's own namespace
    return ``None`` (their payload is whatever the plugin emits). Anything else
    raises :class:`UnknownEventError`, with a "did you mean" when a catalog name
    is close.
    """
    catalog = FILTER_CATALOG if kind == "filter" else EVENT_CATALOG
    if name in catalog:
        return catalog[name]
    if is_custom_name(name, plugin_id):
        return None
    other = EVENT_CATALOG if kind == "filter" else FILTER_CATALOG
    noun = "filter" if kind == "filter" else "event"
    if name in other:
        decorator = "hook" if kind == "filter" else "filter_hook"
        raise UnknownEventError(
            f"{name!r} is not {'a filter' if kind == 'filter' else 'an event'}: "
            f"it is {'an event' if kind == 'filter' else 'a filter'}; "
            f"register it with @plugin.{decorator}({name!r})"
        )
    close = difflib.get_close_matches(name, list(catalog), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    known = ", ".join(sorted(catalog))
    raise UnknownEventError(
        f"unknown {noun} {name!r}{hint} Known {noun}s: {known}. "
        f"A plugin's own {noun}s must be named '{plugin_id}.<name>'."
    )
