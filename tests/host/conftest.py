"""Fixtures for the host tests: a host app on a SQLite file and a client for it in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from host_kit import ADMIN_KEY, http_client

from ops_center_sdk.host import create_host_app


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "ops-center"


@pytest.fixture
def app(data_dir: Path) -> FastAPI:
    return create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as http:
        yield http
    await app.state.bus.aclose()
    app.state.store.close()
