"""Helpers of the API client tests."""

from __future__ import annotations

import httpx

ADMIN_KEY = "admin-test-key"
BASE_URL = "http://ops.test"


class CountingTransport(httpx.ASGITransport):
    """The in-memory transport, counting the requests that reach the app."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)


class SleepRecorder:
    """Stands in for ``asyncio.sleep`` between retries: records the waits, waits not."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
