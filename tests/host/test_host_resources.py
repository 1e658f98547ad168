"""Users, organizations, alerts and webhooks through the REST API."""

from __future__ import annotations

import httpx
from host_kit import error_of, field_of


async def test_users_create_validate_filter_update(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "ann@example.com", "name": "Ann"})
    assert response.status_code == 201
    ann = response.json()
    assert ann["role"] == "viewer"
    assert ann["id"].startswith("user-")
    await client.post("/users", json={"id": "u2", "email": "bob@example.com", "role": "admin"})

    for body, field in (
        ({"name": "No mail"}, "body.email"),
        ({"email": "not-an-email"}, "body.email"),
        ({"email": "c@example.com", "role": "root"}, "body.role"),
    ):
        response = await client.post("/users", json=body)
        assert response.status_code == 422, body
        assert field_of(response) == field
    response = await client.post("/users", json={"email": "ANN@example.com"})
    assert response.status_code == 409
    assert "ANN@example.com" in error_of(response)["message"]

    admins = (await client.get("/users", params={"role": "admin"})).json()
    assert [u["id"] for u in admins["items"]] == ["u2"]
    by_mail = (await client.get("/users", params={"email": "Ann@Example.com"})).json()
    assert [u["id"] for u in by_mail["items"]] == [ann["id"]]

    updated = (await client.patch("/users/u2", json={"role": "operator", "name": "Bob"})).json()
    assert (updated["role"], updated["name"], updated["email"]) == (
        "operator",
        "Bob",
        "bob@example.com",
    )
    response = await client.patch("/users/u2", json={"email": "ann@example.com"})
    assert response.status_code == 409
    assert (await client.get("/users/u2")).json()["email"] == "bob@example.com"
    assert (await client.get("/users/nobody")).status_code == 404


async def test_organizations(client: httpx.AsyncClient) -> None:
    response = await client.post("/organizations", json={"id": "org-789", "name": "Acme"})
    assert response.status_code == 201
    assert (await client.get("/organizations/org-789")).json()["name"] == "Acme"
    assert (await client.post("/organizations", json={"name": ""})).status_code == 422
    response = await client.post("/organizations", json={"id": "org-789", "name": "Dup"})
    assert response.status_code == 409
    await client.post("/organizations", json={"name": "Globex"})
    found = (await client.get("/organizations", params={"q": "glob"})).json()
    assert [o["name"] for o in found["items"]] == ["Globex"]
    assert (await client.get("/organizations")).json()["total"] == 2


async def test_alert_needs_only_a_title(client: httpx.AsyncClient) -> None:
    response = await client.post("/alerts", json={"title": "Site down"})
    assert response.status_code == 201
    alert = response.json()
    assert alert["severity"] == "info"
    assert alert["status"] == "active"
    assert alert["device_id"] is None
    assert alert["message"] == ""
    assert (await client.get("/alerts", params={"severity": "info"})).json()["total"] == 1
    chosen = await client.post("/alerts", json={"title": "Disk", "severity": "critical"})
    assert chosen.json()["severity"] == "critical"
    for body, field in (
        ({"severity": "info"}, "body.title"),
        ({}, "body.title"),
        ({"title": "   "}, "body.title"),
        ({"title": "x", "severity": "apocalyptic"}, "body.severity"),
        ({"title": "x", "severity": None}, "body.severity"),
        ({"title": "x", "device_id": ""}, "body.device_id"),
        ({"title": "x", "device_id": 123}, "body.device_id"),
        ({"title": "x", "device_id": "d" * 257}, "body.device_id"),
    ):
        response = await client.post("/alerts", json=body)
        assert response.status_code == 422, body
        assert error_of(response)["code"] == "validation_error"
        assert field_of(response) == field, body
    assert (await client.get("/alerts")).json()["total"] == 2


async def test_an_alert_may_name_a_device_the_host_does_not_have(
    client: httpx.AsyncClient,
) -> None:
    # An alert records what happened: about a device since deleted, or one of
    # another system. Its device_id is kept exactly as given.
    await client.post("/devices", json={"id": "device-123", "name": "Web"})
    assert (await client.delete("/devices/device-123")).status_code == 204
    body = {"device_id": "device-123", "severity": "warning", "title": "High CPU Usage"}
    response = await client.post("/alerts", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["device_id"] == "device-123"
    foreign = await client.post("/alerts", json={"title": "t", "device_id": "other/host 7"})
    assert foreign.status_code == 201, foreign.text
    assert foreign.json()["device_id"] == "other/host 7"
    listed = await client.get("/alerts", params={"device_id": "device-123"})
    assert [a["title"] for a in listed.json()["items"]] == ["High CPU Usage"]
    assert (await client.get("/devices/device-123")).status_code == 404  # none was made


async def test_alert_lifecycle_and_filters(client: httpx.AsyncClient) -> None:
    await client.post("/devices", json={"id": "d1", "name": "Web"})
    for index, severity in enumerate(("info", "critical", "critical")):
        await client.post(
            "/alerts",
            json={"id": f"a{index}", "title": "t", "severity": severity, "device_id": "d1"},
        )
    acked = (await client.post("/alerts/a1/acknowledge")).json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "admin"
    again = (await client.post("/alerts/a1/acknowledge")).json()
    assert again == acked
    resolved = (await client.post("/alerts/a2/resolve")).json()
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"]
    response = await client.post("/alerts/a2/acknowledge")
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert (await client.post("/alerts/nope/resolve")).status_code == 404

    active_critical = (
        await client.get("/alerts", params={"severity": "critical", "status": "active"})
    ).json()
    assert active_critical["items"] == []
    critical = (await client.get("/alerts", params={"severity": "critical"})).json()
    assert [a["id"] for a in critical["items"]] == ["a1", "a2"]
    on_device = (await client.get("/alerts", params={"device_id": "d1", "status": "active"})).json()
    assert [a["id"] for a in on_device["items"]] == ["a0"]


async def test_webhooks(client: httpx.AsyncClient) -> None:
    body = {"url": "https://example.com/webhook", "events": ["device.created", "alert.created"]}
    response = await client.post("/webhooks", json=body)
    assert response.status_code == 201
    hook = response.json()
    assert len(hook["secret"]) >= 32
    listed = (await client.get("/webhooks")).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in (await client.get(f"/webhooks/{hook['id']}")).json()

    response = await client.delete(f"/webhooks/{hook['id']}")
    assert response.status_code == 204
    assert (await client.delete(f"/webhooks/{hook['id']}")).status_code == 404
    assert (await client.get("/webhooks")).json()["total"] == 0


async def test_webhook_validation(client: httpx.AsyncClient) -> None:
    cases = {
        "body.url": {"url": "ftp://example.com", "events": ["device.created"]},
        "body.events[1]": {
            "url": "http://x.test/h",
            "events": ["device.created", "device.craeted"],
        },
        "body.events": {"url": "http://x.test/h", "events": []},
        "body.event": {"url": "http://x.test/h", "events": ["device.created"], "event": "x"},
    }
    for field, body in cases.items():
        response = await client.post("/webhooks", json=body)
        assert response.status_code == 422, body
        assert field_of(response) == field
    response = await client.post("/webhooks", json=cases["body.events[1]"])
    assert "did you mean 'device.created'" in error_of(response)["message"]
