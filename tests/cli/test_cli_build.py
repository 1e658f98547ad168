"""`ops-center-plugin build`: validates first, then a reproducible package and its checksum."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ops_center_sdk.cli.build import over_limits
from ops_center_sdk.cli.main import main
from ops_center_sdk.packaging import BuiltPackage, PackageFile, PackageLimits
from ops_center_sdk.scaffold import PluginAnswers, create_plugin


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    folder = tmp_path / "my-plugin"
    create_plugin(folder, PluginAnswers("my-plugin", name="My Plugin"))
    return folder


def test_build_writes_the_package_prints_it_and_sha256sum_accepts_it(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(plugin)]) == 0

    dist = plugin / "dist"
    assert sorted(p.name for p in dist.iterdir()) == [
        "my-plugin-1.0.0.tar.gz",
        "my-plugin-1.0.0.tar.gz.sha256",
    ]
    checksum_text = (dist / "my-plugin-1.0.0.tar.gz.sha256").read_text()
    digest = checksum_text.split()[0]
    out = capsys.readouterr().out
    assert "main.py" in out
    assert "tests/test_plugin.py" in out
    assert "8 files" in out
    assert f"sha256 {digest}" in out
    sha256sum = shutil.which("sha256sum")
    assert sha256sum is not None, "the sha256sum binary (coreutils) is needed"
    checked = subprocess.run(
        [sha256sum, "-c", "my-plugin-1.0.0.tar.gz.sha256"],
        cwd=dist,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "my-plugin-1.0.0.tar.gz: OK"


def test_two_builds_give_the_same_checksum(plugin: Path, tmp_path: Path) -> None:
    assert main(["build", str(plugin), "--output", str(tmp_path / "first")]) == 0
    for path in plugin.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    assert main(["build", str(plugin), "--output", str(tmp_path / "second")]) == 0

    first = (tmp_path / "first" / "my-plugin-1.0.0.tar.gz.sha256").read_text()
    second = (tmp_path / "second" / "my-plugin-1.0.0.tar.gz.sha256").read_text()
    assert first == second
    assert (tmp_path / "first" / "my-plugin-1.0.0.tar.gz").read_bytes() == (
        tmp_path / "second" / "my-plugin-1.0.0.tar.gz"
    ).read_bytes()


def test_an_invalid_plugin_is_not_built(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (plugin / "plugin.yaml").read_text()
    (plugin / "plugin.yaml").write_text(manifest.replace("handler: get_status", "handler: status"))

    assert main(["build", str(plugin)]) == 1

    captured = capsys.readouterr()
    assert "plugin.yaml:" in captured.out
    assert "'status'" in captured.out
    assert "nothing was built" in captured.err
    assert not (plugin / "dist").exists()


def test_a_link_outside_the_folder_stops_the_build(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secret.txt").write_text("do not ship")
    (plugin / "notes.txt").symlink_to(tmp_path / "secret.txt")

    assert main(["build", str(plugin)]) == 1

    assert "outside the plugin folder" in capsys.readouterr().err
    dist = plugin / "dist"
    assert not dist.exists() or list(dist.iterdir()) == []


def test_json_output(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(plugin), "--json"]) == 0

    result = json.loads(capsys.readouterr().out)
    assert result["built"] is True
    assert result["package"] == str(plugin.resolve() / "dist" / "my-plugin-1.0.0.tar.gz")
    assert len(result["sha256"]) == 64
    assert {"path": "plugin.yaml", "size": (plugin / "plugin.yaml").stat().st_size} in result[
        "files"
    ]
    assert result["warnings"] == []


def test_a_package_over_the_marketplace_limits_is_built_with_a_warning(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = PackageLimits()
    with (plugin / "blob.bin").open("wb") as blob:  # sparse: no disk used
        blob.truncate(limits.max_unpacked_bytes + (1 << 20))
    assert main(["build", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert "warning it unpacks to 201.0 MiB, over the marketplace's limit of 200.0 MiB" in out
    assert ".opsignore" in out
    assert (plugin / "dist" / "my-plugin-1.0.0.tar.gz").is_file()

    files = tuple(
        PackageFile(f"d{i // 100}/{i}.txt", tmp_path / "none", 1, 0o644)
        for i in range(limits.max_entries)
    )
    many = BuiltPackage(tmp_path / "p.tar.gz", tmp_path / "p.sha256", "0" * 64, 1, files)
    assert over_limits(many) == [
        f"it holds {1 + 100 + limits.max_entries} entries, over the marketplace's limit of "
        f"{limits.max_entries}"
    ]
    big = BuiltPackage(tmp_path / "p.tar.gz", tmp_path / "p.sha256", "0" * 64, 60 << 20, ())
    assert over_limits(big) == ["the package is 60.0 MiB, over the marketplace's limit of 50.0 MiB"]


def test_help_has_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("init", "validate", "build", "publish"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert f"  ops-center-plugin {command}" in text
        assert "exit codes: 0" in text
