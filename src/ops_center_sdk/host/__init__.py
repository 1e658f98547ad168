"""The local Ops-Center: REST API, resource store, API keys and event bus.

The SDK never imports this package, except the testing kit and the ``dev``
command: plugins meet the host only through the ``Plugin`` object or the wire
protocol. Names are imported lazily so that importing ``host.bus`` or
``host.store`` alone does not load FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "create_host_app": "ops_center_sdk.host.app",
    "EventBus": "ops_center_sdk.host.bus",
    "EventEnvelope": "ops_center_sdk.host.bus",
    "HostStore": "ops_center_sdk.host.store",
    "APIKeys": "ops_center_sdk.host.auth",
    "Principal": "ops_center_sdk.host.auth",
    "API_PREFIX": "ops_center_sdk.host.rest",
}

__all__ = [
    "API_PREFIX",
    "APIKeys",
    "EventBus",
    "EventEnvelope",
    "HostStore",
    "Principal",
    "create_host_app",
]

if TYPE_CHECKING:
    from .app import create_host_app
    from .auth import APIKeys, Principal
    from .bus import EventBus, EventEnvelope
    from .rest import API_PREFIX
    from .store import HostStore


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_center_sdk.host' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
