"""Fixtures for the API client tests: the real host app, reached in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from api_kit import ADMIN_KEY, BASE_URL, CountingTransport
from fastapi import FastAPI

from ops_center_sdk.api import APIClient
from ops_center_sdk.host import create_host_app


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    app = create_host_app(admin_key=ADMIN_KEY)
    yield app
    await app.state.bus.aclose()
    app.state.store.close()


@pytest.fixture
def transport(app: FastAPI) -> CountingTransport:
    return CountingTransport(app=app)


@pytest.fixture
async def api(transport: CountingTransport) -> AsyncIterator[APIClient]:
    async with APIClient(BASE_URL, ADMIN_KEY, transport=transport) as client:
        yield client
