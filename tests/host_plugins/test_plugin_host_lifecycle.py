"""Installing, enabling, disabling and uninstalling plugin folders through the REST API."""

from __future__ import annotations

from pathlib import Path

from plugin_kit import RunningHost, error_of, write_recorder

from ops_center_sdk.host.plugin_host import PLUGIN_KIND, key_owner


async def test_installed_plugin_filters_hooks_calls_back_and_serves_routes(
    host: RunningHost, plugins_dir: Path
) -> None:
    installed = await host.install(write_recorder(plugins_dir))
    assert installed.status_code == 201, installed.text
    described = installed.json()
    assert described["status"] == "enabled"
    assert described["events"] == ["device.created"]
    assert described["filters"] == ["device.data.process"]
    assert described["routes"] == [
        {"path": "/plugins/recorder/status", "methods": ["GET"], "public": False}
    ]

    created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
    assert created.status_code == 201
    assert created.json()["metadata"] == {"order": ["recorder"]}  # the filter ran before storing
    await host.settle()

    status = (await host.http.get("/plugins/recorder/status")).json()
    assert status == {"devices": 1, "installs": 1, "enables": 1, "threshold": 3}
    alerts = (await host.http.get("/api/v1/alerts")).json()["items"]
    assert [(a["title"], a["device_id"]) for a in alerts] == [("recorder saw d1", "d1")]
    logs = (await host.http.get("/api/v1/plugins/recorder/logs")).json()["items"]
    assert [entry["message"] for entry in logs] == ["saw d1"]


async def test_enable_is_idempotent_and_disable_stops_everything(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_recorder(plugins_dir))
    again = await host.http.post("/api/v1/plugins/recorder/enable")
    assert again.status_code == 200
    assert again.json()["status"] == "enabled"

    disabled = await host.http.post("/api/v1/plugins/recorder/disable")
    assert disabled.status_code == 200
    assert disabled.json()["status"] == "disabled"
    assert (await host.http.post("/api/v1/plugins/recorder/disable")).status_code == 200
    route = await host.http.get("/plugins/recorder/status")
    assert route.status_code == 503
    assert "disabled" in error_of(route)["message"]
    created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
    assert created.json()["metadata"] == {}  # no filter while disabled
    await host.settle()
    assert (await host.http.get("/api/v1/alerts")).json()["total"] == 0  # no hook either

    assert (await host.http.post("/api/v1/plugins/recorder/enable")).status_code == 200
    status = (await host.http.get("/plugins/recorder/status")).json()
    assert (status["devices"], status["installs"], status["enables"]) == (0, 1, 2)


async def test_uninstall_removes_data_key_record_and_routes(
    host: RunningHost, plugins_dir: Path, data_dir: Path
) -> None:
    folder = write_recorder(plugins_dir)
    await host.install(folder)
    await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
    await host.settle()
    assert (data_dir / "plugins" / "recorder" / "storage.db").is_file()

    gone = await host.http.delete("/api/v1/plugins/recorder")
    assert gone.status_code == 204
    assert (await host.http.get("/api/v1/plugins/recorder")).status_code == 404
    assert (await host.http.get("/plugins/recorder/status")).status_code == 404
    assert not (data_dir / "plugins" / "recorder").exists()
    assert key_owner("recorder") not in host.app.state.keys.owners()
    assert host.app.state.store.get(PLUGIN_KIND, "recorder") is None

    await host.install(folder)  # a new installation: on_install runs again, no old data
    status = (await host.http.get("/plugins/recorder/status")).json()
    assert (status["devices"], status["installs"]) == (0, 1)


async def test_unknown_plugin_ids_are_404_everywhere(host: RunningHost) -> None:
    calls = [
        ("GET", "/api/v1/plugins/nope"),
        ("POST", "/api/v1/plugins/nope/enable"),
        ("POST", "/api/v1/plugins/nope/disable"),
        ("DELETE", "/api/v1/plugins/nope"),
        ("GET", "/api/v1/plugins/nope/config"),
        ("PUT", "/api/v1/plugins/nope/config"),
        ("GET", "/api/v1/plugins/nope/health"),
        ("GET", "/api/v1/plugins/nope/logs"),
        ("GET", "/plugins/nope/status"),
    ]
    for method, path in calls:
        response = await host.http.request(method, path, json={} if method == "PUT" else None)
        assert response.status_code == 404, (method, path, response.text)
        assert "'nope'" in error_of(response)["message"]


async def test_plugin_calls_need_their_permissions(host: RunningHost, plugins_dir: Path) -> None:
    keys = host.app.state.keys
    reader = keys.issue("ops-team", ["plugins:read"])
    async with host.client(reader) as client:
        assert (await client.get("/api/v1/plugins")).status_code == 200
        refused = await client.post("/api/v1/plugins", json={"path": str(plugins_dir)})
        assert refused.status_code == 403
        assert "plugins:admin" in error_of(refused)["message"]
    async with host.client(None) as anonymous:
        assert (await anonymous.get("/api/v1/plugins")).status_code == 401


async def test_a_plugin_cannot_disable_itself(host: RunningHost, plugins_dir: Path) -> None:
    await host.install(write_recorder(plugins_dir))
    own_key = host.plugins.get("recorder").plugin.api.api_key  # type: ignore[union-attr]
    # Even holding plugins:admin, its own key may not switch it off.
    host.app.state.keys.revoke_owner(key_owner("recorder"))
    admin_like = host.app.state.keys.issue(key_owner("recorder"), ["plugins:admin"])
    assert own_key != admin_like
    async with host.client(admin_like) as client:
        refused = await client.post("/api/v1/plugins/recorder/disable")
    assert refused.status_code == 403
    assert "itself" in error_of(refused)["message"]
    assert host.plugins.get("recorder").enabled


async def test_list_filters_by_status_and_pages(host: RunningHost, plugins_dir: Path) -> None:
    for name in ("one", "two", "three"):
        await host.install(write_recorder(plugins_dir, name))
    await host.http.post("/api/v1/plugins/two/disable")
    listed = (await host.http.get("/api/v1/plugins", params={"page_size": 2})).json()
    assert [p["id"] for p in listed["items"]] == ["one", "two"]
    assert listed["total"] == 3
    enabled = (await host.http.get("/api/v1/plugins", params={"status": "enabled"})).json()
    assert [p["id"] for p in enabled["items"]] == ["one", "three"]
    typo = await host.http.get("/api/v1/plugins", params={"stauts": "enabled"})
    assert typo.status_code == 422
