"""A restart keeps plugins, their state, config and storage; a reload swaps code, not data."""

from __future__ import annotations

import os
import py_compile
from pathlib import Path

import pytest
from plugin_kit import RECORDER, RunningHost, running_host, write_plugin, write_recorder

from ops_center_sdk.host.plugin_errors import PluginProblem


async def test_restart_keeps_installed_plugins_state_config_and_storage(
    data_dir: Path, plugins_dir: Path
) -> None:
    async with running_host(data_dir) as host:
        await host.install(write_recorder(plugins_dir))
        await host.install(write_recorder(plugins_dir, "resting"))
        await host.http.post("/api/v1/plugins/resting/disable")
        await host.http.put("/api/v1/plugins/recorder/config", json={"threshold": 9})
        await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})

    async with running_host(data_dir) as host:
        listed = (await host.http.get("/api/v1/plugins")).json()["items"]
        assert [(p["id"], p["status"]) for p in listed] == [
            ("recorder", "enabled"),
            ("resting", "disabled"),
        ]
        status = (await host.http.get("/plugins/recorder/status")).json()
        assert status == {"devices": 1, "installs": 1, "enables": 2, "threshold": 9}
        assert (await host.http.get("/api/v1/devices/d1")).status_code == 200
        assert (await host.http.get("/plugins/resting/status")).status_code == 503
        # The plugin's new key (issued at load) works for its calls back.
        await host.http.post("/api/v1/devices", json={"id": "d2", "name": "Db"})
        await host.settle()
        titles = [a["title"] for a in (await host.http.get("/api/v1/alerts")).json()["items"]]
        assert titles == ["recorder saw d1", "recorder saw d2"]


async def test_a_plugin_broken_between_restarts_is_marked_and_can_recover(
    data_dir: Path, plugins_dir: Path
) -> None:
    folder = write_recorder(plugins_dir)
    async with running_host(data_dir) as host:
        await host.install(folder)
    main = folder / "main.py"
    good = main.read_text()
    main.write_text(good + "\nundefined_name\n")
    async with running_host(data_dir) as host:
        described = (await host.http.get("/api/v1/plugins/recorder")).json()
        assert described["status"] == "error"
        assert f"{main}:" in described["error"]["message"]
        assert "NameError" in described["error"]["message"]
        assert (await host.http.get("/plugins/recorder/status")).status_code == 503
        assert (await host.http.get("/api/v1/health")).status_code == 200
        failed = await host.http.post("/api/v1/plugins/recorder/enable")
        assert failed.status_code == 422
        main.write_text(good)
        recovered = await host.http.post("/api/v1/plugins/recorder/enable")
        assert recovered.status_code == 200
        assert recovered.json()["status"] == "enabled"
        assert (await host.http.get("/plugins/recorder/status")).json()["installs"] == 1


async def test_reload_runs_new_code_on_the_same_storage(
    host: RunningHost, plugins_dir: Path
) -> None:
    folder = write_plugin(
        plugins_dir / "counter",
        "counter",
        """
        from ops_center_sdk import Plugin
        from helpers import label

        plugin = Plugin(id="counter", version="1.0.0")


        @plugin.hook("device.created")
        async def count(device_id):
            await plugin.storage.increment("devices")


        @plugin.route("/status")
        async def status():
            return {"label": label(), "devices": await plugin.storage.get("devices", default=0)}
        """,
        files={"helpers.py": "def label():\n    return 'v1'\n"},
    )
    await host.install(folder)
    await host.http.post("/api/v1/devices", json={"name": "Web"})
    await host.settle()
    assert (await host.http.get("/plugins/counter/status")).json() == {"label": "v1", "devices": 1}

    helpers = folder / "helpers.py"
    py_compile.compile(str(helpers))  # bytecode, as Python caches it when allowed to
    stat = helpers.stat()
    helpers.write_text("def label():\n    return 'v2'\n")  # same size...
    os.utime(helpers, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same mtime
    await host.plugins.reload("counter")
    assert (await host.http.get("/plugins/counter/status")).json() == {"label": "v2", "devices": 1}
    await host.http.post("/api/v1/devices", json={"name": "Db"})
    await host.settle()
    assert (await host.http.get("/plugins/counter/status")).json()["devices"] == 2


async def test_a_reload_that_fails_keeps_the_old_version_serving(
    host: RunningHost, plugins_dir: Path
) -> None:
    folder = write_recorder(plugins_dir)
    await host.install(folder)
    main = folder / "main.py"
    main.write_text(main.read_text() + "\n\nraise ImportError('half-saved file')\n")
    with pytest.raises(PluginProblem) as failed:
        await host.plugins.reload("recorder")
    assert f"{main}:" in failed.value.message
    assert "ImportError: half-saved file" in failed.value.message
    assert (await host.http.get("/plugins/recorder/status")).status_code == 200
    described = (await host.http.get("/api/v1/plugins/recorder")).json()
    assert described["status"] == "enabled"
    assert described["error"]["phase"] == "reload"

    # A manifest that breaks config_schema on reload: refused the same way.
    manifest = folder / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace("maximum: 10", "maximum: 'ten'"))
    main.write_text(RECORDER.format(id="recorder", priority=10))
    with pytest.raises(PluginProblem) as bad_schema:
        await host.plugins.reload("recorder")
    assert bad_schema.value.code == "invalid_manifest"
    manifest.write_text(manifest.read_text().replace("maximum: 'ten'", "maximum: 10"))

    # A config.yaml that breaks the schema: refused, kept as the plugin's last error.
    config = folder / "config.yaml"
    config.write_text("threshold: 99\n")
    with pytest.raises(PluginProblem) as bad_config:
        await host.plugins.reload("recorder")
    assert bad_config.value.code == "invalid_config"
    described = (await host.http.get("/api/v1/plugins/recorder")).json()
    assert described["status"] == "enabled"
    assert (described["error"]["phase"], described["error"]["code"]) == ("reload", "invalid_config")
    assert f"{config}:1: threshold" in described["error"]["message"]
    health = (await host.http.get("/api/v1/plugins/recorder/health")).json()
    assert health["last_error"] == described["error"]
    config.unlink()

    await host.plugins.reload("recorder")
    described = (await host.http.get("/api/v1/plugins/recorder")).json()
    assert (described["status"], described["error"]) == ("enabled", None)
    status = (await host.http.get("/plugins/recorder/status")).json()
    assert (status["installs"], status["enables"]) == (1, 2)
