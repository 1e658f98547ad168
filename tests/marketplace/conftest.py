"""Fixtures of the marketplace tests: a host app on a data folder, and clients for it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

# The archive helpers live beside the packaging tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))

from ops_center_sdk.host import create_host_app

ADMIN_KEY = "marketplace-admin-key"


def client_for(app: FastAPI, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ops.test", headers=headers
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def app(data_dir: Path) -> AsyncIterator[FastAPI]:
    application = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    yield application
    await application.state.bus.aclose()
    application.state.store.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http
