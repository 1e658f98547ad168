"""Fixtures of the plugin-host tests: a data folder and a host served in memory on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plugin_kit import RunningHost, running_host


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins-src"
    folder.mkdir()
    return folder


@pytest.fixture
async def host(data_dir: Path) -> AsyncIterator[RunningHost]:
    async with running_host(data_dir) as running:
        yield running
