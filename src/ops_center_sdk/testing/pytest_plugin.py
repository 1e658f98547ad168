"""The SDK's pytest plugin (entry point ``pytest11``): fixtures for plugin tests.

Fixtures: ``plugin`` (a test plugin on mocks, id ``test-plugin``),
``mock_api``, ``mock_storage``, ``mock_scheduler``, ``mock_config``,
``mock_logger`` (that plugin's services), ``plugin_under_test`` (the real
plugin in the folder pytest runs from, on mocks) and ``plugin_client`` (an
httpx client on that plugin's app).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from ..plugin import Plugin


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "plugin_path(path): the plugin folder the plugin_under_test fixture loads"
    )
    _default_to_auto_asyncio(config)


def _default_to_auto_asyncio(config: pytest.Config) -> None:
    """Let ``async def test_...`` run without markers, unless the project chose a mode.

    pytest-asyncio's own default ("strict") would need ``@pytest.mark.asyncio``
    on every test; a project that sets ``asyncio_mode`` keeps its choice.
    """
    if not config.pluginmanager.hasplugin("asyncio"):
        return
    _default_fixture_loop_scope(config)
    chosen_on_command_line = getattr(config.option, "asyncio_mode", None) is not None
    if chosen_on_command_line or "asyncio_mode" in _ini_keys(config):
        return
    config.option.asyncio_mode = "auto"


def _default_fixture_loop_scope(config: pytest.Config) -> None:
    """``asyncio_default_fixture_loop_scope = function`` unless the project sets it.

    pytest-asyncio warns (``PytestDeprecationWarning``) in every folder that
    leaves it unset, such as a plugin folder without a pytest.ini; "function"
    is the default its next versions will have. This runs before
    pytest-asyncio reads the option, so the value is the one it sees.
    """
    name = "asyncio_default_fixture_loop_scope"
    cache = getattr(config, "_inicache", None)  # what getini returns once it was read
    if not isinstance(cache, dict) or name in _ini_keys(config) or name in cache:
        return
    cache[name] = "function"


def _ini_keys(config: pytest.Config) -> set[str]:
    """The options the project's ini file sets (getini cannot tell "set" from "default")."""
    # pytest 9 deprecates the public ``inicfg`` for this; ``_inicfg`` is its storage.
    raw = getattr(config, "_inicfg", None)
    if raw is None:
        raw = config.inicfg
    return set(raw)


try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - the test extra installs pytest-asyncio
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@pytest.fixture
def plugin() -> Plugin:
    """A fresh test plugin (id ``test-plugin``) wired to mocks."""
    from .plugin import create_test_plugin

    return create_test_plugin("test-plugin")


@pytest.fixture
def mock_api(plugin: Plugin) -> Any:
    """The test plugin's MockAPIClient (an in-memory Ops-Center behind it)."""
    return plugin.api


@pytest.fixture
def mock_storage(plugin: Plugin) -> Any:
    """The test plugin's MockStorage."""
    return plugin.storage


@pytest.fixture
def mock_scheduler(plugin: Plugin) -> Any:
    """The test plugin's MockScheduler; ``await mock_scheduler.advance(timedelta(...))``."""
    return plugin.scheduler


@pytest.fixture
def mock_config(plugin: Plugin) -> Any:
    """The test plugin's MockConfig."""
    return plugin.config


@pytest.fixture
def mock_logger(plugin: Plugin) -> Any:
    """The test plugin's MockLogger; ``mock_logger.get_logs(level="ERROR")``."""
    return plugin.logger


@pytest.fixture
def plugin_under_test(request: pytest.FixtureRequest) -> Plugin:
    """The real plugin of this project on mocks.

    It is loaded from the folder named by ``@pytest.mark.plugin_path(...)``,
    else from the nearest folder holding plugin.yaml at or above the test file.
    """
    from pathlib import Path

    from .plugin import load_test_plugin

    marker = request.node.get_closest_marker("plugin_path")
    if marker is not None:
        folder = Path(marker.args[0])
    else:
        start = Path(str(request.node.fspath)).resolve().parent
        found = next((p for p in (start, *start.parents) if (p / "plugin.yaml").is_file()), None)
        if found is None:
            raise pytest.UsageError(
                f"no plugin.yaml at or above {start}; mark the test with "
                "@pytest.mark.plugin_path('path/to/plugin')"
            )
        folder = found
    return load_test_plugin(folder)


@_async_fixture
async def plugin_client(plugin_under_test: Plugin) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the plugin's app: ``await plugin_client.get("/plugins/<id>/status")``."""
    import httpx

    app = plugin_under_test.create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
