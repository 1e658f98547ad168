"""A plugin process through reloads, config changes and a restart of the host."""

from __future__ import annotations

from pathlib import Path

import pytest
from process_kit import error_of, is_running, served_host, write_plugin

from ops_center_sdk.host.errors import HostError

pytestmark = pytest.mark.slow

GREETER = """
from ops_center_sdk import Plugin

plugin = Plugin(id="greeter", version="1.0.0")
VERSION = "{version}"


@plugin.on_install
async def installed():
    await plugin.storage.increment("installs")


@plugin.hook("greeter.wave")
async def wave(n):
    await plugin.storage.increment(f"wave:{{n}}")


@plugin.route("/hello")
async def hello():
    return {{
        "version": VERSION,
        "greeting": plugin.config.get("greeting"),
        "installs": await plugin.storage.get("installs"),
    }}


@plugin.route("/waves")
async def waves():
    return await plugin.storage.get_many(await plugin.storage.list_keys("wave:*"))
"""

SCHEMA = """\
config_schema:
  type: object
  additionalProperties: false
  properties:
    greeting: {type: string, default: hi}
"""


async def test_a_plugin_process_reloads_takes_config_and_survives_a_host_restart(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = write_plugin(tmp_path / "greeter", "greeter", GREETER.format(version="v1"), SCHEMA)
    main = folder / "main.py"
    async with served_host(data_dir) as host:
        first = await host.install(folder, mode="process")
        assert await host.get("/plugins/greeter/hello") == {
            "version": "v1",
            "greeting": "hi",
            "installs": 1,
        }

        # config: checked here against the schema, then the process restarts with it
        changed = await host.http.put("/api/v1/plugins/greeter/config", json={"greeting": "hey"})
        assert changed.status_code == 200
        assert (await host.get("/plugins/greeter/hello"))["greeting"] == "hey"
        wrong = await host.http.put("/api/v1/plugins/greeter/config", json={"greeting": 5})
        assert (wrong.status_code, error_of(wrong)["details"][0]["field"]) == (
            422,
            "body.greeting",
        )
        assert (await host.get("/plugins/greeter/hello"))["greeting"] == "hey"

        # reload: a new process takes over; new code that does not import leaves the old one
        main.write_text(GREETER.format(version="v2"))
        await host.plugins.reload("greeter")
        assert (await host.get("/plugins/greeter/hello"))["version"] == "v2"
        serving = (await host.get("/api/v1/plugins/greeter"))["process"]["pid"]
        assert serving != first["process"]["pid"]
        main.write_text(GREETER.format(version="v3") + "\nraise RuntimeError('half saved')\n")
        with pytest.raises(HostError, match="RuntimeError: half saved"):
            await host.plugins.reload("greeter")
        assert (await host.get("/plugins/greeter/hello"))["version"] == "v2"
        described = await host.get("/api/v1/plugins/greeter")
        assert (described["status"], described["process"]["pid"]) == ("enabled", serving)
        assert described["error"]["code"] == "plugin_import_error"
        main.write_text(GREETER.format(version="v3"))
        # as if the host had stopped while this event still waited for the plugin
        left = {"id": "evt-left", "name": "greeter.wave", "occurred_at": "", "payload": {"n": 1}}
        host.plugins.dead_letters.add(
            "greeter", left, attempts=0, error="still queued", reason="shutdown"
        )

    # the host starts again on its data: the plugin comes back as a process, data and config kept
    async with served_host(data_dir) as host:
        described = await host.get("/api/v1/plugins/greeter")
        assert (described["mode"], described["status"], described["state"]) == (
            "process",
            "enabled",
            "running",
        )
        assert await host.get("/plugins/greeter/hello") == {
            "version": "v3",
            "greeting": "hey",
            "installs": 1,
        }
        pid = described["process"]["pid"]
        await host.settle()
        assert await host.get("/plugins/greeter/waves") == {"wave:1": 1}
        assert (await host.get("/api/v1/plugins/greeter/dead-letters"))["total"] == 0

        # `dev` without --process on the same folder: back in the host's process, same data
        await host.plugins.install_folder(folder, replace=True, mode="in_process")
        described = await host.get("/api/v1/plugins/greeter")
        assert (described["mode"], described["status"], described["process"]) == (
            "in_process",
            "enabled",
            None,
        )
        assert await host.get("/plugins/greeter/hello") == {
            "version": "v3",
            "greeting": "hey",
            "installs": 1,
        }
        assert not is_running(pid)
