"""Retries: idempotent calls retry on 429/5xx with backoff, honouring Retry-After; writes don't."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from api_kit import BASE_URL, SleepRecorder
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ops_center_sdk.api import (
    APIClient,
    APIConnectionError,
    APITimeoutError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from ops_center_sdk.api.retry import parse_retry_after

Failure = tuple[int, dict[str, str]]


def flaky_app(failures: list[Failure]) -> FastAPI:
    """An app answering each request with the next planned failure, then with success."""
    app = FastAPI()
    app.state.calls = []

    @app.api_route("/api/v1/devices/{device_id}", methods=["GET", "PUT", "PATCH", "DELETE"])
    @app.post("/api/v1/devices")
    async def answer(request: Request) -> JSONResponse:
        app.state.calls.append(request.method)
        if failures:
            status, headers = failures.pop(0)
            body = {"error": {"code": "flaky", "message": f"planned {status}", "details": []}}
            return JSONResponse(body, status_code=status, headers=headers)
        return JSONResponse({"id": "d1", "name": "Web"})

    return app


def client_for(app: FastAPI, sleep: SleepRecorder, **options: object) -> APIClient:
    return APIClient(
        BASE_URL,
        "k",
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
        **options,  # type: ignore[arg-type]
    )


async def test_get_retries_5xx_with_growing_jittered_backoff() -> None:
    app, sleep = flaky_app([(503, {}), (500, {}), (502, {})]), SleepRecorder()
    async with client_for(app, sleep) as api:
        assert (await api.devices.get("d1"))["id"] == "d1"
    assert app.state.calls == ["GET"] * 4
    first, second, third = sleep.waits
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0
    assert 1.0 <= third <= 2.0


async def test_retry_after_seconds_is_honoured() -> None:
    app, sleep = flaky_app([(429, {"Retry-After": "3"})]), SleepRecorder()
    async with client_for(app, sleep) as api:
        await api.devices.get("d1")
    assert sleep.waits == [3.0]


async def test_retry_after_http_date_is_honoured() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    app, sleep = flaky_app([(503, {"Retry-After": when})]), SleepRecorder()
    async with client_for(app, sleep) as api:
        await api.devices.get("d1")
    assert len(sleep.waits) == 1
    assert 3.0 <= sleep.waits[0] <= 5.0


async def test_a_retry_after_beyond_the_cap_fails_at_once_with_retry_after() -> None:
    app, sleep = flaky_app([(429, {"Retry-After": "120"})]), SleepRecorder()
    async with client_for(app, sleep) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.devices.get("d1")
    assert caught.value.retry_after == 120.0
    assert caught.value.status == 429
    assert sleep.waits == []
    assert app.state.calls == ["GET"]


async def test_retries_stop_after_max_retries() -> None:
    app, sleep = flaky_app([(503, {})] * 10), SleepRecorder()
    async with client_for(app, sleep, max_retries=2) as api:
        with pytest.raises(ServerError, match="planned 503") as caught:
            await api.devices.get("d1")
    assert caught.value.status == 503
    assert app.state.calls == ["GET"] * 3
    assert len(sleep.waits) == 2


async def create_device(api: APIClient) -> dict[str, Any]:
    return await api.devices.create({"name": "x"})


async def update_device(api: APIClient) -> dict[str, Any]:
    return await api.devices.update("d1", {"name": "x"})


async def get_device(api: APIClient) -> dict[str, Any]:
    return await api.devices.get("d1")


async def test_writes_are_not_retried_on_5xx() -> None:
    for method, call in (("POST", create_device), ("PATCH", update_device)):
        app, sleep = flaky_app([(503, {})]), SleepRecorder()
        async with client_for(app, sleep) as api:
            with pytest.raises(ServerError):
                await call(api)
        assert app.state.calls == [method]
        assert sleep.waits == []


async def test_writes_are_retried_on_429() -> None:
    app, sleep = flaky_app([(429, {"Retry-After": "1"})]), SleepRecorder()
    async with client_for(app, sleep) as api:
        assert (await api.devices.create({"name": "x"}))["id"] == "d1"
    assert app.state.calls == ["POST", "POST"]
    assert sleep.waits == [1.0]


async def test_put_and_delete_are_retried() -> None:
    plan: list[Failure] = [(502, {})]
    app, sleep = flaky_app(plan), SleepRecorder()
    async with client_for(app, sleep) as api:
        await api.request("PUT", "/devices/d1", json={"name": "x"})
        plan.append((504, {}))
        await api.devices.delete("d1")
    assert app.state.calls == ["PUT", "PUT", "DELETE", "DELETE"]


async def test_no_retries_when_max_retries_is_zero() -> None:
    app, sleep = flaky_app([(503, {})]), SleepRecorder()
    async with client_for(app, sleep, max_retries=0) as api:
        with pytest.raises(ServerError):
            await api.devices.get("d1")
    assert app.state.calls == ["GET"]


def failing_transport(errors: list[Exception], calls: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if errors:
            raise errors.pop(0)
        return httpx.Response(200, json={"id": "d1"})

    return httpx.MockTransport(handler)


async def test_connection_refused_is_retried_for_every_method() -> None:
    for call in (get_device, create_device):
        calls: list[str] = []
        errors: list[Exception] = [httpx.ConnectError("refused"), httpx.ConnectError("refused")]
        sleep = SleepRecorder()
        transport = failing_transport(errors, calls)
        async with APIClient(BASE_URL, "k", transport=transport, sleep=sleep) as api:
            assert (await call(api))["id"] == "d1"
        assert len(calls) == 3
        assert len(sleep.waits) == 2


async def test_a_lost_answer_is_retried_only_for_idempotent_calls() -> None:
    calls: list[str] = []
    transport = failing_transport([httpx.ReadError("reset"), httpx.ReadError("reset")], calls)
    async with APIClient(BASE_URL, "k", transport=transport, sleep=SleepRecorder()) as api:
        with pytest.raises(APIConnectionError, match="reset"):
            await api.devices.create({"name": "x"})
        assert calls == ["POST"]
        assert (await api.devices.get("d1"))["id"] == "d1"
        assert calls == ["POST", "GET", "GET"]


async def test_connection_errors_after_retries_are_typed() -> None:
    calls: list[str] = []
    errors: list[Exception] = [httpx.ConnectError("refused")] * 4
    transport = failing_transport(errors, calls)
    async with APIClient(BASE_URL, "k", transport=transport, sleep=SleepRecorder()) as api:
        with pytest.raises(APIConnectionError, match="after 4 attempts"):
            await api.devices.get("d1")
    timeouts: list[Exception] = [httpx.ReadTimeout("slow")]
    transport = failing_transport(timeouts, [])
    async with APIClient(
        BASE_URL, "k", transport=transport, retry_policy=RetryPolicy(max_retries=0)
    ) as api:
        with pytest.raises(APITimeoutError, match=r"within 10\.0 s"):
            await api.devices.get("d1")


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad, now=now) is None
