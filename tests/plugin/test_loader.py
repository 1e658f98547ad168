"""Loading a plugin folder: errors name the file and line; the entrypoint is imported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops_center_sdk import ManifestError
from ops_center_sdk.loader import PluginLoadError, load_plugin

MANIFEST = "id: load-plugin\nname: Load Plugin\nversion: 1.0.0\n"
GOOD = "from ops_center_sdk import Plugin\nplugin = Plugin(id='load-plugin')\n"


def make(tmp_path: Path, main: str | None = GOOD, manifest: str = MANIFEST) -> Path:
    folder = tmp_path / "load-plugin"
    folder.mkdir()
    (folder / "plugin.yaml").write_text(manifest)
    if main is not None:
        (folder / "main.py").write_text(main)
    return folder


def test_a_good_folder_loads_its_plugin(tmp_path: Path) -> None:
    loaded = load_plugin(make(tmp_path))
    assert loaded.plugin.id == "load-plugin"
    assert loaded.module.__name__ == "ops_center_plugins.load_plugin"
    assert load_plugin(loaded.folder).module is loaded.module
    assert load_plugin(loaded.folder, fresh=True).module is not loaded.module


def test_an_entrypoint_that_raises_names_its_line(tmp_path: Path) -> None:
    folder = make(tmp_path, main=GOOD + "\n\nraise ValueError('bad setting')\n")
    with pytest.raises(PluginLoadError) as caught:
        load_plugin(folder)
    message = str(caught.value)
    assert f"{folder / 'main.py'}:5" in message
    assert "ValueError: bad setting" in message


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    folder = make(tmp_path, main=GOOD + "def broken(:\n")
    with pytest.raises(PluginLoadError, match=r"main\.py:3"):
        load_plugin(folder)


def test_a_missing_entrypoint_is_named(tmp_path: Path) -> None:
    folder = make(tmp_path, main=None)
    with pytest.raises(PluginLoadError, match="entrypoint"):
        load_plugin(folder)


def test_a_module_without_a_plugin_is_refused(tmp_path: Path) -> None:
    folder = make(tmp_path, main="x = 1\n")
    with pytest.raises(PluginLoadError, match="found 0"):
        load_plugin(folder)


def test_a_broken_manifest_names_its_line(tmp_path: Path) -> None:
    folder = make(tmp_path, manifest=MANIFEST + "category: a: b\n")
    with pytest.raises(ManifestError) as caught:
        load_plugin(folder)
    assert "plugin.yaml:4" in str(caught.value)


def test_a_fresh_load_never_runs_stale_bytecode(tmp_path: Path) -> None:
    import os
    import py_compile

    folder = make(tmp_path, main=GOOD + "LABEL = 'v1'\n")
    entry = folder / "main.py"
    assert load_plugin(folder).module.LABEL == "v1"
    py_compile.compile(str(entry))  # a cached .pyc, as Python writes when allowed
    stat = entry.stat()
    entry.write_text(GOOD + "LABEL = 'v2'\n")  # same size, and the same mtime below
    os.utime(entry, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_plugin(folder, fresh=True).module.LABEL == "v2"
