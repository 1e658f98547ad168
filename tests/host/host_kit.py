"""Helpers of the host tests (a module of its own: conftest is not importable by name)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

ADMIN_KEY = "admin-test-key"


def http_client(app: FastAPI, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
    """A raw client for ``app`` in memory, sending ``key`` as the bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ops.test/api/v1", headers=headers
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a response, checking it has the one error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], list)
    return error


def field_of(response: httpx.Response) -> str:
    """The field the first detail of an error response names."""
    field: str = error_of(response)["details"][0]["field"]
    return field
