"""Building plugins for tests: a fresh one, or the real one in a folder, on mocks."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..loader import LoadedPlugin
from ..plugin import Plugin, system_namespace
from ..scheduler import ManualClock
from ..storage import Storage
from .api import MockAPIClient
from .mocks import MockConfig, MockLogger, MockScheduler, MockStorage


def mock_services(
    plugin_id: str,
    *,
    config: Mapping[str, Any] | None = None,
    config_schema: Mapping[str, Any] | None = None,
    permissions: Sequence[str] | None = None,
    clock: ManualClock | None = None,
    config_label: str = "create_test_plugin(config=...)",
) -> dict[str, Any]:
    """Storage, scheduler, config, logger and API client for one test plugin."""
    clock = clock or ManualClock()
    storage = MockStorage(plugin_id, clock=clock)
    state = Storage(storage.backend, system_namespace(plugin_id))
    return {
        "clock": clock,
        "storage": storage,
        "scheduler": MockScheduler(plugin_id, clock=clock, state=state),
        "config": MockConfig(config, schema=config_schema, label=config_label),
        "logger": MockLogger(plugin_id),
        "api": MockAPIClient(permissions=permissions),
    }


def create_test_plugin(
    plugin_id: str = "test-plugin",
    *,
    name: str | None = None,
    version: str = "1.0.0",
    description: str = "A plugin under test",
    author: str = "Test Author",
    category: str = "monitoring",
    config: Mapping[str, Any] | None = None,
    config_schema: Mapping[str, Any] | None = None,
    permissions: Sequence[str] | None = None,
    clock: ManualClock | None = None,
    **metadata: Any,
) -> Plugin:
    """A plugin wired to mocks: in-memory storage, a manual clock, a captured logger.

    >>> plugin = create_test_plugin("test-plugin", config={"threshold": 0.9})
    >>> plugin.config.get("threshold")
    0.9

    With no ``permissions`` the plugin may make every API call; with some, a
    call they do not allow raises ``PermissionDeniedError`` as in production.
    With no ``config_schema`` any config key may be set.
    """
    from ..manifest import Manifest

    declared: dict[str, Any] = {
        "id": plugin_id,
        "name": name or plugin_id,
        "version": version,
        "description": description,
        "author": author,
        "category": category,
        **metadata,
    }
    if permissions is not None:
        declared["permissions"] = list(permissions)
    if config_schema is not None:
        declared["config_schema"] = dict(config_schema)
    manifest = Manifest.from_dict(declared, source="create_test_plugin(...)")
    services = mock_services(
        plugin_id,
        config=config,
        config_schema=config_schema,
        permissions=permissions,
        clock=clock,
    )
    return Plugin(plugin_id, version=version, manifest=manifest, **services)


def load_test_plugin(
    path: str | Path = ".",
    *,
    config: Mapping[str, Any] | None = None,
    clock: ManualClock | None = None,
) -> Plugin:
    """The real plugin in ``path`` (its plugin.yaml and entrypoint) on mocks.

    Its own decorated handlers, routes, manifest permissions and config schema
    are what the test exercises; config.yaml beside it is read, then
    ``config`` overrides it.

    >>> plugin = load_test_plugin("examples/device_anomaly_detector")
    """
    from ..config import Config

    loaded = _load_once(Path(path))
    plugin = loaded.plugin
    manifest = loaded.manifest
    file_config = Config.from_manifest(manifest, loaded.folder).all()
    services = mock_services(
        plugin.id,
        config={**file_config, **(config or {})},
        config_schema=manifest.config_schema,
        permissions=plugin.permissions,
        clock=clock,
        config_label="config.yaml + load_test_plugin(config=...)",
    )
    plugin.use_services(**services)
    # A fresh start for this test: the module may have served an earlier one.
    plugin.installed = False
    plugin.enabled = False
    return plugin


def _load_once(folder: Path) -> LoadedPlugin:
    """The plugin in ``folder``, imported once per test session.

    A test file that imports the entrypoint itself (``from main import
    handler``) must get the same module, and so the same ``plugin``, as the
    fixtures: the module is registered under its plain name too (``main``),
    and a module already imported from that file is reused.
    """
    from ..loader import load_plugin

    entry = _entrypoint(folder)
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(entry):
            loaded = load_plugin(folder, module=module)
            break
    else:
        loaded = load_plugin(folder)
    sys.modules.setdefault(entry.stem, loaded.module)
    return loaded


def _entrypoint(folder: Path) -> Path:
    from ..manifest import load_manifest

    root = folder.resolve()
    manifest = load_manifest(root)
    return root / (manifest.runtime.entrypoint if manifest.runtime else "main.py")
