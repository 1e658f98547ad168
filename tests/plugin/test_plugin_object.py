"""The Plugin object: metadata, plugin.yaml beside the module, lifecycle, services."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ops_center_sdk import ManifestError, Plugin
from ops_center_sdk.errors import HookError, UnknownEventError
from ops_center_sdk.testing import create_test_plugin

MANIFEST = """\
id: disk-plugin
name: Disk Plugin
version: 2.1.0
description: from disk
author: Someone
category: monitoring
permissions:
  - devices:read
config_schema:
  type: object
  properties:
    threshold:
      type: number
      maximum: 1
      default: 0.8
"""


def write_plugin(folder: Path, manifest: str = MANIFEST, config: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(manifest)
    if config is not None:
        (folder / "config.yaml").write_text(config)
    return folder


def test_spec_constructor_gives_metadata() -> None:
    plugin = Plugin(
        id="my-plugin",
        name="My Plugin",
        version="1.0.0",
        description="My awesome plugin",
        author="Your Name",
        category="monitoring",
        root=None,
    )
    meta = plugin.metadata
    assert (meta.id, meta.name, meta.version, meta.category) == (
        "my-plugin",
        "My Plugin",
        "1.0.0",
        "monitoring",
    )
    assert plugin.permissions is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": "My Plugin"}, "id"),
        ({"id": "ok-plugin", "version": "1.0"}, "version"),
        ({"id": "ok-plugin", "category": "monitorin"}, "category"),
    ],
)
def test_bad_metadata_is_refused_naming_the_field(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        Plugin(**kwargs)
    assert any(problem.path == field for problem in caught.value.problems)


def test_plugin_yaml_beside_the_root_supplies_permissions_and_schema(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "p", config="threshold: 0.5\n")
    plugin = Plugin(id="disk-plugin", root=folder)
    assert plugin.metadata.version == "2.1.0"
    assert plugin.permissions == ("devices:read",)
    assert plugin.config.get("threshold") == 0.5


def test_from_manifest_reads_the_folder(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "p")
    plugin = Plugin.from_manifest(folder)
    assert plugin.id == "disk-plugin"
    assert plugin.config.get("threshold") == 0.8


def test_constructor_disagreeing_with_plugin_yaml_is_an_error(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "p")
    with pytest.raises(ManifestError, match="version") as caught:
        Plugin(id="disk-plugin", version="9.9.9", root=folder)
    assert "2.1.0" in str(caught.value)
    with pytest.raises(ManifestError, match="id"):
        Plugin(id="other-plugin", root=folder)


def test_plugin_found_beside_the_calling_module(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "p")
    (folder / "main.py").write_text(
        textwrap.dedent(
            """
            from ops_center_sdk import Plugin
            plugin = Plugin(id="disk-plugin", name="Disk Plugin")
            """
        )
    )
    namespace: dict[str, object] = {"__file__": str(folder / "main.py"), "__name__": "main"}
    exec(compile((folder / "main.py").read_text(), str(folder / "main.py"), "exec"), namespace)
    plugin = namespace["plugin"]
    assert isinstance(plugin, Plugin)
    assert plugin.root == folder.resolve()
    assert plugin.permissions == ("devices:read",)


def test_hook_registration_errors_surface_at_the_decorator() -> None:
    plugin = create_test_plugin("test-plugin")
    with pytest.raises(UnknownEventError, match=r"device\.created"):
        plugin.hook("device.craeted")(lambda device_id: None)
    with pytest.raises(HookError, match="colour"):

        @plugin.hook("device.created")
        async def needs_more(device_id: str, colour: str) -> None: ...


def test_decorators_used_without_their_arguments_are_refused() -> None:
    plugin = create_test_plugin("test-plugin")

    async def on_created(device_id: str) -> None: ...

    with pytest.raises(
        TypeError, match=r"write @plugin\.hook\('device\.created'\) above '.*on_created'"
    ):
        plugin.hook(on_created)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"@plugin\.filter_hook\('device\.data\.process'\)"):
        plugin.filter_hook(on_created)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"@plugin\.route\('/status'\)"):
        plugin.route(on_created)  # type: ignore[arg-type]
    assert plugin.hooks.events() == []
    assert plugin.routes == []


async def test_lifecycle_failure_keeps_the_plugin_disabled() -> None:
    plugin = create_test_plugin("test-plugin")

    @plugin.on_enable
    async def broken() -> None:
        raise RuntimeError("cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        await plugin.start()
    assert plugin.installed
    assert not plugin.enabled


async def test_uninstall_removes_the_plugins_data_and_install_flag() -> None:
    plugin = create_test_plugin("test-plugin")
    installs: list[int] = []

    @plugin.on_install
    async def on_install() -> None:
        installs.append(1)

    await plugin.start()
    await plugin.storage.set("k", 1)
    await plugin.uninstall()
    assert await plugin.storage.list_keys() == []
    assert not await plugin.is_installed()
    await plugin.start()
    assert installs == [1, 1]


async def test_storage_clear_does_not_forget_installation() -> None:
    plugin = create_test_plugin("test-plugin")
    await plugin.start()
    await plugin.storage.clear()
    assert await plugin.is_installed()


async def test_custom_events_in_the_plugins_namespace() -> None:
    plugin = create_test_plugin("test-plugin")
    seen: list[int] = []

    @plugin.hook("test-plugin.batch_done")
    async def on_batch(size: int) -> None:
        seen.append(size)

    await plugin.emit("test-plugin.batch_done", size=3)
    assert seen == [3]


async def test_a_plugin_emits_only_its_own_events() -> None:
    plugin = create_test_plugin("test-plugin")
    with pytest.raises(HookError, match="can only emit its own events") as caught:
        await plugin.emit("device.created", device_id="d", device_data={})
    assert "trigger_hook" in str(caught.value)
    with pytest.raises(HookError):
        await plugin.emit("other-plugin.done")
