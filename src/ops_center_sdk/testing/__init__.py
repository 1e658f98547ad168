"""The testing kit: the SDK's real components on in-memory backends.

>>> from ops_center_sdk.testing import create_test_plugin, trigger_hook
>>> plugin = create_test_plugin("test-plugin")

Every mock here is the real component, not a second implementation:
``MockStorage`` is the storage API on ``memory://``, ``MockScheduler`` the
scheduler on a clock the test moves, ``MockConfig`` the config with its schema
enforced, ``MockLogger`` the plugin logger with a capturing handler, and
``MockAPIClient`` the API client talking to the local Ops-Center's own REST
app in memory.
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

_EXPORTS: dict[str, str] = {
    "create_test_plugin": "ops_center_sdk.testing.plugin",
    "load_test_plugin": "ops_center_sdk.testing.plugin",
    "trigger_hook": "ops_center_sdk.testing.triggers",
    "trigger_filter": "ops_center_sdk.testing.triggers",
    "MockStorage": "ops_center_sdk.testing.mocks",
    "MockScheduler": "ops_center_sdk.testing.mocks",
    "MockConfig": "ops_center_sdk.testing.mocks",
    "MockLogger": "ops_center_sdk.testing.mocks",
    "MockAPIClient": "ops_center_sdk.testing.api",
    "ManualClock": "ops_center_sdk.scheduler",
}

__all__ = [  # noqa: RUF022 - grouped by use
    "create_test_plugin",
    "load_test_plugin",
    "trigger_hook",
    "trigger_filter",
    "MockStorage",
    "MockScheduler",
    "MockConfig",
    "MockLogger",
    "MockAPIClient",
    "ManualClock",
]

if TYPE_CHECKING:
    from typing import Any

    from ..scheduler import ManualClock
    from .api import MockAPIClient
    from .mocks import MockConfig, MockLogger, MockScheduler, MockStorage
    from .plugin import create_test_plugin, load_test_plugin
    from .triggers import trigger_filter, trigger_hook


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_center_sdk.testing' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
