"""Building packages: reproducible bytes, what is left out, links, and failed builds."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest
from archive_kit import write_plugin

from ops_center_sdk import packaging
from ops_center_sdk.packaging import (
    PackageError,
    build_package,
    collect_files,
    read_checksum_file,
    sha256_of,
)


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    folder = write_plugin(tmp_path / "demo-plugin")
    (folder / "lib").mkdir()
    (folder / "lib" / "helpers.py").write_text("VALUE = 1\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o750)
    return folder


def names_in(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_two_builds_of_the_same_files_are_byte_identical(plugin: Path, tmp_path: Path) -> None:
    first = build_package(plugin, tmp_path / "one")
    for path in plugin.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    (plugin / "main.py").chmod(0o600)  # group/other bits are normalized too
    second = build_package(plugin, tmp_path / "two")

    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256 == sha256_of(second.path)


def test_a_changed_file_changes_the_checksum(plugin: Path, tmp_path: Path) -> None:
    first = build_package(plugin, tmp_path / "one")
    (plugin / "lib" / "helpers.py").write_text("VALUE = 2\n")

    assert build_package(plugin, tmp_path / "two").sha256 != first.sha256


def test_the_archive_is_normalized(plugin: Path) -> None:
    built = build_package(plugin)

    assert built.path == plugin / "dist" / "demo-plugin-1.0.0.tar.gz"
    assert built.checksum_path.read_text() == f"{built.sha256}  demo-plugin-1.0.0.tar.gz\n"
    header = built.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0", "gzip header time must be 0"
    assert header[3] & 0x08 == 0, "gzip header must not name a file"
    with tarfile.open(built.path) as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names == [
        "demo-plugin-1.0.0",
        "demo-plugin-1.0.0/README.md",
        "demo-plugin-1.0.0/lib",
        "demo-plugin-1.0.0/lib/helpers.py",
        "demo-plugin-1.0.0/main.py",
        "demo-plugin-1.0.0/plugin.yaml",
        "demo-plugin-1.0.0/run.sh",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid) == (0, 0, 0)
        assert (member.uname, member.gname) == ("", "")
    modes = {member.name.split("/")[-1]: member.mode for member in members}
    assert modes["demo-plugin-1.0.0"] == modes["lib"] == 0o755
    assert modes["run.sh"] == 0o755
    assert modes["main.py"] == modes["plugin.yaml"] == 0o644


def test_source_date_epoch_sets_the_entry_times(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    built = build_package(plugin)

    with tarfile.open(built.path) as tar:
        assert {member.mtime for member in tar.getmembers()} == {1_700_000_000}
    with gzip.open(built.path) as stream:
        stream.read(1)
        assert stream.mtime == 0


def test_a_bad_source_date_epoch_is_refused(plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(PackageError, match="SOURCE_DATE_EPOCH"):
        build_package(plugin)


def test_vcs_caches_venvs_dist_and_opsignore_are_left_out(plugin: Path) -> None:
    for folder in (
        ".git/objects",
        "__pycache__",
        "lib/__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".venv/lib",
        "venv/bin",
        "env/bin",
        "dist",
        ".ops-center/data",
        "secrets",
        "static/dist",
    ):
        (plugin / folder).mkdir(parents=True, exist_ok=True)
        (plugin / folder / "file.txt").write_text("x")
    (plugin / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (plugin / "lib" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    (plugin / "debug.log").write_text("x")
    (plugin / "keep.log").write_text("x")
    (plugin / ".opsignore").write_text("# local only\nsecrets/\n*.log\n!keep.log\n")

    paths = [item.path for item in collect_files(plugin)]

    assert paths == [
        ".opsignore",
        "README.md",
        "keep.log",
        "lib/helpers.py",
        "main.py",
        "plugin.yaml",
        "run.sh",
        "static/dist/file.txt",
    ]


def test_opsignore_cannot_leave_out_the_manifest_or_entrypoint(plugin: Path) -> None:
    (plugin / ".opsignore").write_text("main.py\n")

    with pytest.raises(PackageError, match=r"main\.py would not be in the package"):
        build_package(plugin)
    assert not (plugin / "dist").exists() or not any((plugin / "dist").iterdir())


def test_an_output_folder_inside_the_plugin_is_not_packaged(plugin: Path) -> None:
    first = build_package(plugin, plugin / "out")
    second = build_package(plugin, plugin / "out")

    assert first.sha256 == second.sha256
    assert not any(name.startswith("demo-plugin-1.0.0/out") for name in names_in(second.path))


def test_links_inside_the_folder_are_stored_as_their_content(plugin: Path) -> None:
    (plugin / "alias.py").symlink_to("lib/helpers.py")
    (plugin / "shared").symlink_to("lib", target_is_directory=True)

    built = build_package(plugin)

    with tarfile.open(built.path) as tar:
        alias = tar.getmember("demo-plugin-1.0.0/alias.py")
        shared = tar.getmember("demo-plugin-1.0.0/shared/helpers.py")
        assert alias.isfile()
        assert shared.isfile()
        assert not any(member.issym() or member.islnk() for member in tar.getmembers())
        extracted = tar.extractfile(alias)
        assert extracted is not None
        assert extracted.read() == b"VALUE = 1\n"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_link_pointing_outside_stops_the_build(plugin: Path, tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    target = outside / "secret.txt" if kind == "file" else outside
    (plugin / "link").symlink_to(target)

    with pytest.raises(PackageError, match=r"link is a link to .*outside the plugin folder"):
        build_package(plugin)
    assert not (plugin / "dist").exists() or list((plugin / "dist").iterdir()) == []


def test_a_broken_link_and_a_link_loop_stop_the_build(plugin: Path) -> None:
    (plugin / "gone").symlink_to(plugin / "missing.txt")
    with pytest.raises(PackageError, match="broken link"):
        build_package(plugin)
    (plugin / "gone").unlink()
    (plugin / "lib" / "up").symlink_to(plugin / "lib", target_is_directory=True)
    with pytest.raises(PackageError, match="loop"):
        build_package(plugin)


def test_a_failed_build_leaves_the_previous_package_untouched(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = build_package(plugin)
    old_bytes = before.path.read_bytes()
    (plugin / "main.py").write_text((plugin / "main.py").read_text() + "\n# changed\n")

    def disk_full(*args: object, **kwargs: object) -> None:
        out = args[2]
        out.write(b"\x1f\x8b partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packaging, "write_archive", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build_package(plugin)

    assert sorted(p.name for p in (plugin / "dist").iterdir()) == [
        "demo-plugin-1.0.0.tar.gz",
        "demo-plugin-1.0.0.tar.gz.sha256",
    ]
    assert before.path.read_bytes() == old_bytes
    assert read_checksum_file(before.checksum_path) == before.sha256
