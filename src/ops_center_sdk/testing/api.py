"""MockAPIClient: the real API client talking to a local Ops-Center in memory.

The host's own REST app (:func:`ops_center_sdk.host.create_host_app`) runs
in the test's process through ``httpx.ASGITransport``, on an in-memory
store: the mock validates, paginates, filters and fails exactly as the host
does, because it is the host.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from ..api import APIClient
from ..api.client import Params

if TYPE_CHECKING:
    from fastapi import FastAPI

TEST_BASE_URL = "http://ops-center.test/api/v1"


class MockAPIClient(APIClient):
    """The API client on an in-memory Ops-Center, recording every request.

    >>> api = MockAPIClient()
    >>> device = await api.devices.create({"name": "Test Device", "type": "server"})
    >>> api.get_requests(method="POST", endpoint="/devices")
    [{'method': 'POST', 'endpoint': '/devices', ...}]

    With ``permissions`` the client refuses calls they do not allow before
    sending anything, and the host holds a key limited to them, as in
    production. ``host`` shares one Ops-Center between several clients.
    """

    def __init__(
        self,
        *,
        permissions: Iterable[str] | None = None,
        host: FastAPI | None = None,
        owner: str = "test-plugin",
    ) -> None:
        super().__init__(TEST_BASE_URL, permissions=permissions, max_retries=0)
        self._host = host
        self._owner = owner
        self.requests: list[dict[str, Any]] = []

    @property
    def host(self) -> FastAPI:
        """The in-memory Ops-Center app (made on first use); ``host.state.store`` etc."""
        if self._host is None:
            from ..host import create_host_app

            self._host = create_host_app()
        return self._host

    def _open(self) -> httpx.AsyncClient:
        state = self.host.state
        if self.permissions is None:
            self._api_key = state.admin_key
        else:
            self._api_key = state.keys.issue(self._owner, sorted(self.permissions))
        self._transport = httpx.ASGITransport(app=self.host)
        return super()._open()

    async def _exchange(
        self, method: str, endpoint: str, params: Params, json: Any
    ) -> httpx.Response:
        response = await super()._exchange(method, endpoint, params, json)
        self.requests.append(
            {
                "method": method,
                "endpoint": endpoint,
                "params": dict(params) if params else {},
                "json": json,
                "status": response.status_code,
            }
        )
        return response

    def get_requests(
        self, method: str | None = None, endpoint: str | None = None
    ) -> list[dict[str, Any]]:
        """The requests made so far, oldest first, optionally filtered.

        ``endpoint`` is the path below ``/api/v1`` as the call made it
        (``"/alerts"``, ``"/devices/device-1"``); it may be a glob
        (``"/devices/*"``).
        """
        found = self.requests
        if method is not None:
            found = [r for r in found if r["method"] == method.upper()]
        if endpoint is not None:
            if any(ch in endpoint for ch in "*?["):
                found = [r for r in found if fnmatch.fnmatchcase(r["endpoint"], endpoint)]
            else:
                found = [r for r in found if r["endpoint"] == endpoint]
        return list(found)

    def admin(self) -> MockAPIClient:
        """An unrestricted client on the same Ops-Center, to set up or inspect its data."""
        return MockAPIClient(host=self.host, owner="test-admin")

    def reset(self) -> None:
        """Forget the recorded requests (the host's data stays)."""
        self.requests.clear()
