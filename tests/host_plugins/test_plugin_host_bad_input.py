"""Broken plugin folders, failing lifecycle handlers and bad config: clear 4xx, host unharmed."""

from __future__ import annotations

from pathlib import Path

import httpx
from plugin_kit import RunningHost, error_of, write_plugin, write_recorder

GOOD_MAIN = """
from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", version="1.0.0")
"""


async def assert_host_still_serves(host: RunningHost, plugins_dir: Path) -> None:
    assert (await host.http.get("/api/v1/health")).status_code == 200
    installed = await host.install(write_recorder(plugins_dir, "healthy"))
    assert installed.status_code == 201
    assert (await host.http.get("/plugins/healthy/status")).status_code == 200


def detail_of(response: httpx.Response) -> dict[str, object]:
    details: list[dict[str, object]] = error_of(response)["details"]
    return details[0]


async def test_broken_manifest_names_file_and_line(host: RunningHost, plugins_dir: Path) -> None:
    folder = write_plugin(
        plugins_dir / "bad",
        "bad-manifest",
        GOOD_MAIN.format(id="bad-manifest"),
        "permissions: [users:reed]\n",
    )
    response = await host.install(folder)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_manifest"
    assert "users:reed" in error["message"]
    assert f"{folder / 'plugin.yaml'}:4" in error["message"]
    detail = detail_of(response)
    assert (detail["field"], detail["line"]) == ("permissions[0]", 4)
    assert detail["file"] == str(folder / "plugin.yaml")
    assert (await host.http.get("/api/v1/plugins")).json()["total"] == 0
    await assert_host_still_serves(host, plugins_dir)


async def test_entrypoint_raising_on_import_names_file_and_line(
    host: RunningHost, plugins_dir: Path
) -> None:
    main = GOOD_MAIN.format(id="raiser") + "\n\nraise RuntimeError('no database configured')\n"
    folder = write_plugin(plugins_dir / "raiser", "raiser", main)
    response = await host.install(folder)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "plugin_import_error"
    assert f"{folder / 'main.py'}:7" in error["message"]
    assert "RuntimeError: no database configured" in error["message"]
    detail = detail_of(response)
    assert (detail["file"], detail["line"]) == (str(folder / "main.py"), 7)
    await assert_host_still_serves(host, plugins_dir)


async def test_syntax_error_names_file_and_line(host: RunningHost, plugins_dir: Path) -> None:
    folder = write_plugin(plugins_dir / "typo", "typo", GOOD_MAIN.format(id="typo") + "def f(:\n")
    response = await host.install(folder)
    assert response.status_code == 422
    assert f"{folder / 'main.py'}:5" in error_of(response)["message"]


async def test_missing_folder_and_bad_body(host: RunningHost, tmp_path: Path) -> None:
    missing = await host.install(tmp_path / "nowhere")
    assert missing.status_code == 422
    assert detail_of(missing)["field"] == "body.path"
    assert "nowhere" in error_of(missing)["message"]
    unknown_field = await host.http.post("/api/v1/plugins", json={"path": "x", "enabled": True})
    assert unknown_field.status_code == 422
    assert detail_of(unknown_field)["field"] == "body.enabled"
    not_json = await host.http.post(
        "/api/v1/plugins", content=b"{path", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert error_of(not_json)["code"] == "invalid_json"


async def test_installing_twice_is_a_conflict(host: RunningHost, plugins_dir: Path) -> None:
    folder = write_recorder(plugins_dir)
    assert (await host.install(folder)).status_code == 201
    again = await host.install(folder)
    assert again.status_code == 409
    assert "already installed" in error_of(again)["message"]
    assert (await host.http.get("/plugins/recorder/status")).json()["installs"] == 1


async def test_a_conflicting_install_never_runs_the_new_code(
    host: RunningHost, plugins_dir: Path
) -> None:
    assert (await host.install(write_recorder(plugins_dir))).status_code == 201
    marker = plugins_dir / "imported"
    main = f"""
from pathlib import Path

from ops_center_sdk import Plugin

Path({str(marker)!r}).write_text("ran")
plugin = Plugin(id="recorder", version="1.0.0")
"""
    other = write_plugin(plugins_dir / "other-copy", "recorder", main)
    again = await host.install(other)
    assert again.status_code == 409
    assert "already installed" in error_of(again)["message"]
    assert not marker.exists()
    assert (await host.http.get("/plugins/recorder/status")).json()["installs"] == 1


async def test_failing_on_install_installs_nothing(host: RunningHost, plugins_dir: Path) -> None:
    main = (
        GOOD_MAIN.format(id="bad-install")
        + """

@plugin.on_install
async def on_install():
    raise ValueError("cannot reach the license server")
"""
    )
    folder = write_plugin(plugins_dir / "bad-install", "bad-install", main)
    response = await host.install(folder)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "plugin_failed"
    assert f"{folder / 'main.py'}:9" in error["message"]
    assert "ValueError: cannot reach the license server" in error["message"]
    assert (await host.http.get("/api/v1/plugins/bad-install")).status_code == 404
    await assert_host_still_serves(host, plugins_dir)


async def test_failing_on_enable_leaves_the_plugin_installed_in_error(
    host: RunningHost, plugins_dir: Path
) -> None:
    main = (
        GOOD_MAIN.format(id="bad-enable")
        + """

@plugin.on_enable
async def on_enable():
    raise ConnectionError("broker down")


@plugin.route("/status")
async def status():
    return {"ok": True}
"""
    )
    folder = write_plugin(plugins_dir / "bad-enable", "bad-enable", main)
    response = await host.install(folder)
    assert response.status_code == 201  # installed; it just does not run
    assert response.json()["status"] == "error"
    assert (
        f"{folder / 'main.py'}:9: ConnectionError: broker down"
        in (response.json()["error"]["message"])
    )
    described = (await host.http.get("/api/v1/plugins/bad-enable")).json()
    assert described["status"] == "error"
    assert "broker down" in described["error"]["message"]
    again = await host.http.post("/api/v1/plugins/bad-enable/enable")
    assert again.status_code == 422
    assert error_of(again)["code"] == "plugin_failed"
    route = await host.http.get("/plugins/bad-enable/status")
    assert route.status_code == 503
    assert "broker down" in error_of(route)["message"]
    health = (await host.http.get("/api/v1/plugins/bad-enable/health")).json()
    assert health["status"] == "error"
    assert health["last_error"]["phase"] == "enable"
    await assert_host_still_serves(host, plugins_dir)


async def test_config_breaking_the_schema_is_refused_naming_path_and_rule(
    host: RunningHost, plugins_dir: Path
) -> None:
    await host.install(write_recorder(plugins_dir))
    refused = await host.http.put(
        "/api/v1/plugins/recorder/config", json={"threshold": 12, "treshold": 1}
    )
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["code"] == "invalid_config"
    by_field = {d["field"]: d["message"] for d in error["details"]}
    assert "maximum" in by_field["body.threshold"]
    assert "did you mean 'threshold'" in by_field["body.treshold"]
    wrong_type = await host.http.put("/api/v1/plugins/recorder/config", json={"threshold": "high"})
    assert wrong_type.status_code == 422
    assert "type number" in error_of(wrong_type)["details"][0]["message"]
    not_an_object = await host.http.put("/api/v1/plugins/recorder/config", json=[1])
    assert not_an_object.status_code == 422
    # Nothing changed.
    assert (await host.http.get("/plugins/recorder/status")).json()["threshold"] == 3
    config = (await host.http.get("/api/v1/plugins/recorder/config")).json()
    assert config["overrides"] == {}

    accepted = await host.http.put("/api/v1/plugins/recorder/config", json={"threshold": 7.5})
    assert accepted.status_code == 200
    assert accepted.json()["config"] == {"threshold": 7.5}
    assert (await host.http.get("/plugins/recorder/status")).json()["threshold"] == 7.5


async def test_a_required_config_key_must_be_set_before_enabling(
    host: RunningHost, plugins_dir: Path
) -> None:
    manifest = """\
    config_schema:
      type: object
      required: [api_token]
      properties:
        api_token: {type: string, minLength: 8}
    """
    folder = write_plugin(
        plugins_dir / "needs-token", "needs-token", GOOD_MAIN.format(id="needs-token"), manifest
    )
    installed = await host.install(folder)
    assert installed.status_code == 201
    assert installed.json()["status"] == "error"
    assert "api_token" in installed.json()["error"]["message"]
    short = await host.http.put("/api/v1/plugins/needs-token/config", json={"api_token": "x"})
    assert short.status_code == 422
    assert "minLength" in error_of(short)["details"][0]["message"]
    assert (
        await host.http.put(
            "/api/v1/plugins/needs-token/config", json={"api_token": "s3cret-token"}
        )
    ).status_code == 200
    enabled = await host.http.post("/api/v1/plugins/needs-token/enable")
    assert enabled.json()["status"] == "enabled"
