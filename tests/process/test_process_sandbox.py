"""A hostile plugin process cannot reach the host's secrets or another plugin's data.

The breach this reproduces: a process-mode plugin holding only
``devices:read`` read the admin key from ``<data>/admin-key``, used it, read
every plugin's protocol secret from ``ops-center.db``, and read another
plugin's ``storage.db``. The spy below tries each of these (and more) from
inside its own process and reports what it got.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from process_kit import ADMIN_KEY, served_host, write_plugin

from ops_center_sdk.cli.admin_key import admin_key

pytestmark = pytest.mark.slow

SPY = """
import json, os, socket
from pathlib import Path

import httpx

from ops_center_sdk import Plugin

plugin = Plugin(id="spy", version="1.0.0")
TARGETS = json.loads({targets!r})


def attempt(action):
    try:
        return "got: " + str(action())[:200]
    except Exception as exc:
        return "denied: " + type(exc).__name__


@plugin.route("/spy")
async def spy():
    found = {{}}
    for name, path in TARGETS["files"].items():
        found[name] = attempt(lambda: Path(path).read_bytes())
    for name, path in TARGETS["folders"].items():
        found[name] = attempt(lambda: sorted(os.listdir(path)))
    found["signal_host"] = attempt(lambda: os.kill(TARGETS["host_pid"], 0) or "sent")
    found["environment"] = sorted(os.environ)
    found["own_key_is_admin"] = os.environ.get("OPS_CENTER_API_KEY") == TARGETS["admin_key"]
    found["admin_key_in_environment"] = any(
        TARGETS["admin_key"] in value for value in os.environ.values()
    )
    found["descriptors"] = sorted(
        os.readlink(f"/proc/self/fd/{{fd}}") for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{{fd}}")
    )
    await plugin.storage.set("mine", "my own data")
    found["own_storage"] = await plugin.storage.get("mine")
    return found


@plugin.route("/emit-as-admin", methods=["POST"])
async def emit_as_admin():
    async with httpx.AsyncClient(base_url=os.environ["OPS_CENTER_API_URL"]) as client:
        response = await client.post(
            "/api/v1/events",
            json={{"name": "device.created", "payload": {{}}}},
            headers={{"Authorization": "Bearer " + os.environ["OPS_CENTER_API_KEY"]}},
        )
    return {{"status": response.status_code}}
"""

SPY_MANIFEST = """
permissions:
  - devices:read
"""

VICTIM = """
from ops_center_sdk import Plugin

plugin = Plugin(id="victim", version="1.0.0")


@plugin.on_enable
async def remember_a_secret():
    await plugin.storage.set("secret", "the victim's secret")
"""


def spy_targets(data_dir: Path) -> dict[str, Any]:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.pop("OPS_CENTER_API_KEY", None)
    kept = admin_key(data_dir)  # what `dev` keeps for this data folder
    assert kept.path is not None
    return {
        "files": {
            "legacy_admin_key": str(data_dir / "admin-key"),
            "kept_admin_key": str(kept.path),
            "host_store": str(data_dir / "ops-center.db"),
            "victim_storage": str(data_dir / "plugins" / "victim" / "storage.db"),
            "host_environment": f"/proc/{os.getpid()}/environ",
        },
        "folders": {
            "data_folder": str(data_dir),
            "plugins_folder": str(data_dir / "plugins"),
            "victim_folder": str(data_dir / "plugins" / "victim"),
        },
        "host_pid": os.getpid(),
        "admin_key": ADMIN_KEY,
    }


@pytest.mark.parametrize("sandbox", ["auto", "none"])
async def test_a_plugin_process_reaches_only_its_own_folders_key_and_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str
) -> None:
    monkeypatch.setenv("OPS_CENTER_SANDBOX", sandbox)
    data_dir = tmp_path / "data"
    targets = spy_targets(data_dir)
    (data_dir / "admin-key").write_text(ADMIN_KEY)  # as an earlier version kept it
    monkeypatch.setenv("OPS_CENTER_API_KEY", ADMIN_KEY)  # the host's own environment has it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-cloud-credential")
    spy = write_plugin(
        tmp_path / "spy", "spy", SPY.format(targets=json.dumps(targets)), SPY_MANIFEST
    )
    victim = write_plugin(tmp_path / "victim", "victim", VICTIM)
    async with served_host(data_dir) as host:
        await host.install(victim, mode="process")
        described = await host.install(spy, mode="process")
        found = await host.get("/plugins/spy/spy")
        emitted = await host.http.post("/plugins/spy/emit-as-admin")

    isolated = described["process"]["sandbox"]
    with_bwrap = sandbox == "auto" and not os.environ.get("OPS_CENTER_TEST_NO_BWRAP")
    assert isolated["kind"] == ("bubblewrap" if with_bwrap else "none")
    if sandbox == "none":
        assert "turned off" in isolated["warning"]
    # Protected by the sandbox's view, or (as root, without one) by the plugin's own user.
    protected = isolated["kind"] == "bubblewrap" or isolated["user"] is not None
    if protected:
        for target in (*targets["files"], "victim_folder", "signal_host"):
            assert found[target].startswith("denied"), (target, found[target])
        # At most the way down to its own folder: never another plugin's, nor the store.
        assert found["data_folder"] in ("denied: PermissionError", "got: ['plugins']")
        assert found["plugins_folder"] in ("denied: PermissionError", "got: ['spy']")
    if os.geteuid() == 0 and isolated["kind"] == "bubblewrap":
        assert isinstance(isolated["user"], int)
        assert isolated["user"] >= 61000
    if isolated["user"] is None:
        assert os.geteuid() != 0 or "plugins run as root too" in isolated["warning"]
    # Whatever the sandbox: no admin key and no host secret in the environment.
    assert found["own_key_is_admin"] is False
    assert found["admin_key_in_environment"] is False
    assert "AWS_SECRET_ACCESS_KEY" not in found["environment"]
    assert {"OPS_CENTER_API_KEY", "OPS_CENTER_PLUGIN_SECRET"} <= set(found["environment"])
    # No descriptor of the host: only its own socket, pipes, output and storage.
    leaked = [d for d in found["descriptors"] if d.startswith(str(data_dir))]
    assert all(d.startswith(str(data_dir / "plugins" / "spy")) for d in leaked), leaked
    assert not any("ops-center.db" in d for d in found["descriptors"])
    assert found["own_storage"] == "my own data"
    # Its own key cannot do what only the admin may.
    assert emitted.json() == {"status": 403}


async def test_the_sandbox_hides_the_dev_data_folder_inside_the_plugin_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dev`` run in the plugin folder keeps its data in ``./.ops-center/data``."""
    monkeypatch.setenv("OPS_CENTER_SANDBOX", "auto")
    folder = tmp_path / "spy"
    data_dir = folder / ".ops-center" / "data"
    targets = spy_targets(data_dir)
    write_plugin(folder, "spy", SPY.format(targets=json.dumps(targets)), SPY_MANIFEST)
    async with served_host(data_dir) as host:
        described = await host.install(folder, mode="process")
        found = await host.get("/plugins/spy/spy")
    sandbox = described["process"]["sandbox"]
    if os.environ.get("OPS_CENTER_TEST_NO_BWRAP"):
        # The documented fallback: no view, and the host says so.
        assert sandbox["kind"] == "none"
        assert "bubblewrap" in sandbox["warning"]
        return
    assert sandbox["kind"] == "bubblewrap", f"install bubblewrap (see README): {sandbox}"
    assert found["host_store"].startswith("denied"), found["host_store"]
    assert found["data_folder"] == "got: ['plugins']"  # an empty stand-in: only its own
    assert found["plugins_folder"] == "got: ['spy']"
    assert found["own_storage"] == "my own data"


async def test_runtime_limits_of_the_manifest_apply_to_the_process(tmp_path: Path) -> None:
    main = """
    import resource
    from ops_center_sdk import Plugin

    plugin = Plugin(id="limited", version="1.0.0")


    @plugin.route("/limits")
    async def limits():
        return {
            "files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "memory": resource.getrlimit(resource.RLIMIT_AS)[0],
            "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
        }
    """
    manifest = """
    runtime:
      limits:
        open_files: 256
        cpu_seconds: 3600
    """
    folder = write_plugin(tmp_path / "limited", "limited", main, manifest)
    async with served_host(tmp_path / "data") as host:
        described = await host.install(folder, mode="process")
        limits = await host.get("/plugins/limited/limits")
    assert limits == {"files": 256, "memory": 2048 * 1024 * 1024, "cpu": 3600}
    assert described["process"]["sandbox"]["limits"] == {
        "memory_mb": 2048,
        "cpu_seconds": 3600,
        "open_files": 256,
    }
