"""Where the client sends calls, with which key, and its connection pool's life."""

from __future__ import annotations

import httpx
import pytest

from ops_center_sdk.api import APIClient, APIConfigurationError


class RecordingTransport(httpx.MockTransport):
    """Answers every request with an empty page; remembers requests and closes."""

    def __init__(self) -> None:
        super().__init__(self.answer)
        self.requests: list[httpx.Request] = []
        self.closed = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"items": [], "page": 1, "page_size": 50, "total": 0})

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_CENTER_API_URL", raising=False)
    monkeypatch.delenv("OPS_CENTER_API_KEY", raising=False)


async def test_missing_url_fails_at_the_first_call_not_before() -> None:
    transport = RecordingTransport()
    api = APIClient(transport=transport)
    assert api.base_url is None
    with pytest.raises(APIConfigurationError, match="OPS_CENTER_API_URL"):
        await api.devices.list()
    assert transport.requests == []


async def test_url_and_key_come_from_the_environment_at_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = RecordingTransport()
    api = APIClient(transport=transport)
    monkeypatch.setenv("OPS_CENTER_API_URL", "http://ops.test:8000/")
    monkeypatch.setenv("OPS_CENTER_API_KEY", "env-key")
    await api.devices.list()
    request = transport.requests[0]
    assert str(request.url) == "http://ops.test:8000/api/v1/devices?page=1"
    assert request.headers["authorization"] == "Bearer env-key"
    await api.close()


@pytest.mark.parametrize(
    "url",
    ["https://ops.example.com", "https://ops.example.com/", "https://ops.example.com/api/v1"],
)
async def test_url_may_be_the_root_or_the_api_root(url: str) -> None:
    transport = RecordingTransport()
    async with APIClient(url, "k", transport=transport) as api:
        await api.alerts.list(severity="critical", status="active")
    assert str(transport.requests[0].url) == (
        "https://ops.example.com/api/v1/alerts?page=1&severity=critical&status=active"
    )


async def test_one_pool_reused_then_closed_and_reopened() -> None:
    transport = RecordingTransport()
    api = APIClient("http://ops.test", "k", transport=transport)
    await api.devices.list()
    await api.users.list()
    assert transport.closed == 0
    await api.close()
    assert transport.closed == 1
    await api.close()  # closing twice is harmless
    await api.devices.list()  # a closed client opens a new pool
    assert len(transport.requests) == 3
    async with api:
        pass
    assert transport.closed == 2


async def test_filters_none_are_left_out_and_booleans_are_words() -> None:
    transport = RecordingTransport()
    async with APIClient("http://ops.test", "k", transport=transport) as api:
        await api.devices.list(page=2, page_size=10, status=None, custom=True)
    assert dict(transport.requests[0].url.params) == {
        "page": "2",
        "page_size": "10",
        "custom": "true",
    }
