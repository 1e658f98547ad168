"""Paging of every list endpoint: a page_size above the maximum is served, not refused."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from host_kit import error_of

from ops_center_sdk.host.rest.common import MAX_PAGE_SIZE, new_record

LISTS = ("/devices", "/users", "/organizations", "/alerts", "/webhooks")


def fill_devices(app: FastAPI, count: int) -> None:
    """``count`` devices straight into the host's store (a thousand POSTs would be slow)."""
    for index in range(count):
        app.state.store.insert("devices", new_record(f"d{index:04}", {"name": f"Node {index}"}))


async def test_the_maximum_is_at_least_a_thousand() -> None:
    assert MAX_PAGE_SIZE >= 1000


async def test_page_size_above_the_maximum_is_clamped_and_says_so(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    fill_devices(app, MAX_PAGE_SIZE + 2)
    for asked in (MAX_PAGE_SIZE + 1, 5000, 10**30):
        response = await client.get("/devices", params={"page_size": asked})
        assert response.status_code == 200, asked
        page = response.json()
        assert (page["page"], page["page_size"], page["total"]) == (
            1,
            MAX_PAGE_SIZE,
            MAX_PAGE_SIZE + 2,
        )
        assert len(page["items"]) == MAX_PAGE_SIZE
    exact = (await client.get("/devices", params={"page_size": MAX_PAGE_SIZE})).json()
    assert (exact["page_size"], len(exact["items"])) == (MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    # Later pages are counted in pages of the size used, so nothing is skipped.
    second = (await client.get("/devices", params={"page_size": 5000, "page": 2})).json()
    assert [d["id"] for d in second["items"]] == [
        f"d{MAX_PAGE_SIZE:04}",
        f"d{MAX_PAGE_SIZE + 1:04}",
    ]
    assert second["page_size"] == MAX_PAGE_SIZE


@pytest.mark.parametrize("path", LISTS)
async def test_every_list_clamps_the_same_way(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"page_size": 1000000})
    assert response.status_code == 200, response.text
    assert response.json()["page_size"] == MAX_PAGE_SIZE


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", ""])
async def test_page_size_below_one_or_not_a_number_is_a_422(
    client: httpx.AsyncClient, path: str, value: str
) -> None:
    response = await client.get(path, params={"page_size": value})
    assert response.status_code == 422, (path, value)
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == ["query.page_size"]
    assert "query.page_size" in error["message"]


async def test_page_below_one_or_not_a_number_is_a_422(client: httpx.AsyncClient) -> None:
    for value in ("0", "-3", "two"):
        response = await client.get("/devices", params={"page": value})
        assert response.status_code == 422, value
        assert [d["field"] for d in error_of(response)["details"]] == ["query.page"]
