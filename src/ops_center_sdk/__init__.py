"""Ops-Center Plugin SDK: build, test and ship plugins for Ops-Center.

>>> from ops_center_sdk import Plugin
>>> plugin = Plugin(id="my-plugin", name="My Plugin", version="1.0.0")

Names are imported lazily (PEP 562) so that the CLI starts fast.
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Plugin": "ops_center_sdk.plugin",
    "PluginMetadata": "ops_center_sdk.manifest",
    "Manifest": "ops_center_sdk.manifest",
    "load_manifest": "ops_center_sdk.manifest",
    "Storage": "ops_center_sdk.storage",
    "Scheduler": "ops_center_sdk.scheduler",
    "Config": "ops_center_sdk.config",
    "OpsCenterError": "ops_center_sdk.errors",
    "ManifestError": "ops_center_sdk.errors",
    "ConfigError": "ops_center_sdk.errors",
    "HookError": "ops_center_sdk.errors",
    "UnknownEventError": "ops_center_sdk.errors",
    "SchedulerError": "ops_center_sdk.errors",
    "CronError": "ops_center_sdk.errors",
    "StorageError": "ops_center_sdk.errors",
    "Caller": "ops_center_sdk.caller",
    "get_caller": "ops_center_sdk.caller",
}

__all__ = [  # noqa: RUF022 - grouped as in the spec
    "__version__",
    "Plugin",
    "PluginMetadata",
    "Manifest",
    "load_manifest",
    "Storage",
    "Scheduler",
    "Config",
    "OpsCenterError",
    "ManifestError",
    "ConfigError",
    "HookError",
    "UnknownEventError",
    "SchedulerError",
    "CronError",
    "StorageError",
    "Caller",
    "get_caller",
]

if TYPE_CHECKING:
    from typing import Any

    from .caller import Caller, get_caller
    from .config import Config
    from .errors import (
        ConfigError,
        CronError,
        HookError,
        ManifestError,
        OpsCenterError,
        SchedulerError,
        StorageError,
        UnknownEventError,
    )
    from .manifest import Manifest, PluginMetadata, load_manifest
    from .plugin import Plugin
    from .scheduler import Scheduler
    from .storage import Storage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_center_sdk' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
