"""Every error the host answers has the one JSON shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from host_kit import error_of, field_of, http_client

from ops_center_sdk.host import create_host_app


async def test_invalid_json_is_400_invalid_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "not valid JSON" in error["message"]
    assert (await client.get("/devices")).json()["total"] == 0


async def test_body_that_is_not_an_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/devices", json=["name", "x"])
    assert response.status_code == 422
    assert field_of(response) == "body"


async def test_body_without_json_content_type_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices", content=b'{"name": "x"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    messages = [d["message"] for d in error_of(response)["details"]]
    assert any("Content-Type: application/json" in m for m in messages)


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/gadgets")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "/api/v1/gadgets" in error["message"]
    response = await client.delete("/devices")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.fixture
async def small_app() -> AsyncIterator[FastAPI]:
    app = create_host_app(admin_key="k", max_body_bytes=1000)
    yield app
    app.state.store.close()


async def test_declared_oversized_body_is_413(small_app: FastAPI) -> None:
    async with http_client(small_app, "k") as client:
        response = await client.post("/devices", json={"name": "x" * 2000})
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "payload_too_large"
        assert "1000" in error["message"]
        assert (await client.get("/devices")).json()["total"] == 0


async def test_streamed_oversized_body_is_413(small_app: FastAPI) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    async with http_client(small_app, "k") as client:
        response = await client.post(
            "/devices", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"


async def test_a_body_under_the_limit_passes(small_app: FastAPI) -> None:
    async with http_client(small_app, "k") as client:
        response = await client.post("/devices", json={"name": "x", "note": "x" * 800})
        assert response.status_code == 201


async def test_unexpected_exception_is_a_logged_500(
    small_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    small_app.state.store.find = broken
    caplog.set_level(logging.ERROR, logger="ops_center_sdk.host")
    async with http_client(small_app, "k") as client:
        response = await client.get("/devices")
        assert response.status_code == 500
        error = error_of(response)
        assert error["code"] == "internal_error"
        assert "boom" not in error["message"]
        # The host goes on serving.
        assert (await client.get("/devices/none")).status_code == 404
    assert any("boom" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/devices", b'{"name": "x", "metadata": {"load": NaN}}', "NaN"),
        ("/devices", b'{"name": "x", "metadata": {"load": -Infinity}}', "-Infinity"),
        ("/devices", b'{"name": "x", "metadata": {"load": 1e400}}', "1e400"),
    ],
)
async def test_numbers_json_cannot_carry_are_invalid_json(
    client: httpx.AsyncClient, path: str, body: bytes, named: str
) -> None:
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert named in error["details"][0]["message"]
    assert (await client.get("/devices")).json()["total"] == 0


async def test_metrics_with_nan_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/devices", json={"id": "w1", "name": "web"})
    response = await client.post(
        "/devices/w1/metrics",
        content=b'{"cpu_usage": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert (await client.get("/devices/w1")).json().get("last_metrics") is None
