"""The permission catalog: what a manifest may ask for and what each API call needs.

A permission is ``{resource}:{action}``. ``read`` lets a plugin list and get
records, ``write`` lets it create, change and delete them; ``write`` does not
include ``read``. ``plugins:admin`` lets a plugin install, enable, disable
and configure plugins (other than itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: The resources of the Ops-Center API, in the order the docs list them.
RESOURCES: tuple[str, ...] = (
    "devices",
    "users",
    "organizations",
    "alerts",
    "webhooks",
    "plugins",
    "metrics",
)

#: Actions every resource has.
ACTIONS: tuple[str, ...] = ("read", "write")

#: What each permission allows, for ``validate`` output and the marketplace.
PERMISSION_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "devices:read": "list and read devices",
        "devices:write": "create, update and delete devices",
        "users:read": "list and read users",
        "users:write": "create, update and delete users",
        "organizations:read": "list and read organizations",
        "organizations:write": "create, update and delete organizations",
        "alerts:read": "list and read alerts",
        "alerts:write": "create, update, acknowledge, resolve and delete alerts",
        "webhooks:read": "list and read webhooks",
        "webhooks:write": "create, update and delete webhooks",
        "plugins:read": "list installed plugins and read their status",
        "plugins:write": "change plugins' configuration",
        "plugins:admin": "install, enable, disable and uninstall plugins",
        "metrics:read": "read device metrics",
        "metrics:write": "push device metrics",
    }
)

#: Every permission a manifest may list.
ALL_PERMISSIONS: tuple[str, ...] = tuple(PERMISSION_DESCRIPTIONS)

_READ_CALLS = ("list", "get")
_WRITE_CALLS = ("create", "update", "delete")


def _crud(resource: str) -> dict[tuple[str, str], str]:
    calls = {(resource, call): f"{resource}:read" for call in _READ_CALLS}
    calls.update({(resource, call): f"{resource}:write" for call in _WRITE_CALLS})
    return calls


#: The permission each API call needs: ``(resource, call) -> permission``.
#: ``REQUIRED_PERMISSION[("devices", "list")] == "devices:read"``.
REQUIRED_PERMISSION: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        **_crud("devices"),
        **_crud("users"),
        **_crud("organizations"),
        **_crud("alerts"),
        ("alerts", "acknowledge"): "alerts:write",
        ("alerts", "resolve"): "alerts:write",
        **_crud("webhooks"),
        ("plugins", "list"): "plugins:read",
        ("plugins", "get"): "plugins:read",
        ("plugins", "health"): "plugins:read",
        ("plugins", "logs"): "plugins:read",
        ("plugins", "get_config"): "plugins:read",
        ("plugins", "update_config"): "plugins:write",
        ("plugins", "install"): "plugins:admin",
        ("plugins", "enable"): "plugins:admin",
        ("plugins", "disable"): "plugins:admin",
        ("plugins", "uninstall"): "plugins:admin",
        ("metrics", "list"): "metrics:read",
        ("metrics", "get"): "metrics:read",
        ("metrics", "create"): "metrics:write",
    }
)
