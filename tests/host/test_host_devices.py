"""Devices through the REST API: create, read, list, update, delete, metrics."""

from __future__ import annotations

import httpx
from host_kit import error_of, field_of


async def create(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    response = await client.post("/devices", json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_assigns_id_defaults_and_timestamps(client: httpx.AsyncClient) -> None:
    device = await create(client, name="Web 1", type="server")
    assert str(device["id"]).startswith("device-")
    assert device["status"] == "unknown"
    assert device["tags"] == []
    assert device["metadata"] == {}
    assert device["created_at"] == device["updated_at"]
    fetched = (await client.get(f"/devices/{device['id']}")).json()
    assert fetched == device


async def test_client_chosen_id_is_kept_and_a_taken_one_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    await create(client, id="device-1", name="First")
    response = await client.post("/devices", json={"id": "device-1", "name": "Second"})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "device-1" in str(error["message"])
    # The first record is untouched.
    assert (await client.get("/devices/device-1")).json()["name"] == "First"


async def test_extra_fields_are_kept(client: httpx.AsyncClient) -> None:
    device = await create(client, name="Edge", location="rack 3")
    assert device["location"] == "rack 3"


async def test_bad_body_names_each_field_and_stores_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices", json={"name": "  ", "status": "sleeping", "tags": ["ok", 7], "ip_address": "x"}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"body.name", "body.status", "body.tags[1]", "body.ip_address"}
    assert (await client.get("/devices")).json()["total"] == 0


async def test_missing_name_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/devices", json={"type": "server"})
    error = error_of(response)
    assert response.status_code == 422
    assert error["details"][0]["field"] == "body.name"
    assert "body.name" in str(error["message"])


async def test_unknown_id_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        body = {"name": "x"} if method in ("PATCH", "PUT") else None
        response = await client.request(method, "/devices/device-404", json=body)
        assert response.status_code == 404, method
        error = error_of(response)
        assert error["code"] == "not_found"
        assert "device-404" in str(error["message"])


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    for index in range(7):
        await create(
            client,
            id=f"d{index}",
            name=f"Node {index}" if index % 2 else f"Switch {index}",
            status="online" if index < 4 else "offline",
            type="server" if index % 2 else "network",
        )
    page = (await client.get("/devices", params={"page_size": 3})).json()
    assert [d["id"] for d in page["items"]] == ["d0", "d1", "d2"]
    assert (page["page"], page["page_size"], page["total"]) == (1, 3, 7)
    last = (await client.get("/devices", params={"page_size": 3, "page": 3})).json()
    assert [d["id"] for d in last["items"]] == ["d6"]
    online = (await client.get("/devices", params={"status": "online"})).json()
    assert [d["id"] for d in online["items"]] == ["d0", "d1", "d2", "d3"]
    both = (await client.get("/devices", params={"status": "online", "type": "server"})).json()
    assert [d["id"] for d in both["items"]] == ["d1", "d3"]
    search = (await client.get("/devices", params={"q": "SWITCH"})).json()
    assert [d["id"] for d in search["items"]] == ["d0", "d2", "d4", "d6"]
    assert (await client.get("/devices")).json()["page_size"] == 50


async def test_list_refuses_misspelt_filters_and_bad_paging(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices", params={"stauts": "online"})
    error = error_of(response)
    assert response.status_code == 422
    assert error["details"][0]["field"] == "query.stauts"
    assert "did you mean 'status'" in error["details"][0]["message"]
    for params in ({"page": 0}, {"page_size": 0}, {"page": "two"}, {"status": "asleep"}):
        response = await client.get("/devices", params=params)
        assert response.status_code == 422, params
        field = field_of(response)
        assert field == f"query.{next(iter(params))}"


async def test_patch_merges_and_put_replaces(client: httpx.AsyncClient) -> None:
    device = await create(client, id="d1", name="Web", type="server", tags=["a"], note="kept?")
    patched = (await client.patch("/devices/d1", json={"status": "maintenance"})).json()
    assert patched["status"] == "maintenance"
    assert patched["tags"] == ["a"]
    assert patched["note"] == "kept?"
    assert patched["created_at"] == device["created_at"]
    replaced = (await client.put("/devices/d1", json={"name": "Web 2"})).json()
    assert replaced["name"] == "Web 2"
    assert replaced["status"] == "unknown"
    assert replaced["tags"] == []
    assert "note" not in replaced
    assert replaced["created_at"] == device["created_at"]


async def test_patch_validates_the_result_and_keeps_the_stored_record(
    client: httpx.AsyncClient,
) -> None:
    await create(client, id="d1", name="Web")
    for body, field in (({"name": None}, "body.name"), ({"status": "gone"}, "body.status")):
        response = await client.patch("/devices/d1", json=body)
        assert response.status_code == 422
        assert field_of(response) == field
    response = await client.patch("/devices/d1", json={"id": "other"})
    assert response.status_code == 422
    assert field_of(response) == "body.id"
    assert (await client.get("/devices/d1")).json()["name"] == "Web"


async def test_delete_removes_the_device(client: httpx.AsyncClient) -> None:
    await create(client, id="d1", name="Web")
    response = await client.delete("/devices/d1")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get("/devices/d1")).status_code == 404


async def test_organization_id_must_name_an_organization(client: httpx.AsyncClient) -> None:
    # A device belongs to its organization (the host's own data): an unknown
    # one is a bad field of the body, a 422 naming it, not a missing URL.
    response = await client.post("/devices", json={"name": "x", "organization_id": "org-9"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {
            "field": "body.organization_id",
            "message": "no organization has the id 'org-9'; create it first or leave "
            "organization_id out",
            "type": "unknown_reference",
        }
    ]
    assert "body.organization_id" in error["message"]
    await create(client, id="d0", name="x")
    moved = await client.patch("/devices/d0", json={"organization_id": "org-9"})
    assert (moved.status_code, field_of(moved)) == (422, "body.organization_id")
    assert (await client.get("/devices")).json()["total"] == 1  # nothing else was stored

    await client.post("/organizations", json={"id": "org-9", "name": "Acme"})
    await create(client, id="d1", name="x", organization_id="org-9")
    listed = (await client.get("/devices", params={"organization_id": "org-9"})).json()
    assert [d["id"] for d in listed["items"]] == ["d1"]


async def test_push_metrics_stores_the_last_metrics(client: httpx.AsyncClient) -> None:
    await create(client, id="d1", name="Web")
    response = await client.post("/devices/d1/metrics", json={"cpu_usage": 93.5})
    assert response.status_code == 200
    assert response.json()["metrics"] == {"cpu_usage": 93.5}
    device = (await client.get("/devices/d1")).json()
    assert device["last_metrics"] == {"cpu_usage": 93.5}
    # A later update keeps them: they are the host's, not the body's.
    await client.put("/devices/d1", json={"name": "Web"})
    assert (await client.get("/devices/d1")).json()["last_metrics"] == {"cpu_usage": 93.5}


async def test_push_metrics_refuses_empty_or_non_object_bodies(client: httpx.AsyncClient) -> None:
    await create(client, id="d1", name="Web")
    bodies: list[object] = [{}, [1, 2], "cpu"]
    for body in bodies:
        response = await client.post("/devices/d1/metrics", json=body)
        assert response.status_code == 422, body
        assert field_of(response) == "body"
    response = await client.post("/devices/nope/metrics", json={"cpu": 1})
    assert response.status_code == 404
