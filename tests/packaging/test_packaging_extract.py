"""Checking and unpacking packages: what is refused, and that a refusal leaves nothing."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from archive_kit import Member, malicious_archives, members_of, sha256_hex, tar_gz, write_plugin

from ops_center_sdk.packaging import (
    ChecksumMismatch,
    PackageError,
    PackageLimits,
    build_package,
    check_package,
    extract_package,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_built_package_unpacks_to_the_same_files(tmp_path: Path) -> None:
    source = write_plugin(tmp_path / "demo-plugin")
    (source / "tools").mkdir()
    (source / "tools" / "run.sh").write_text("#!/bin/sh\n")
    (source / "tools" / "run.sh").chmod(0o755)
    built = build_package(source)

    contents = extract_package(built.path, tmp_path / "out" / "demo", expected_sha256=built.sha256)

    target = tmp_path / "out" / "demo"
    assert contents.top == "demo-plugin-1.0.0"
    assert (contents.manifest.id, contents.manifest.version) == ("demo-plugin", "1.0.0")
    assert contents.sha256 == built.sha256
    for relative, size in contents.files:
        assert (target / relative).read_bytes() == (source / relative).read_bytes()
        assert (target / relative).stat().st_size == size
    assert (target / "tools" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (target / "main.py").stat().st_mode & 0o777 == 0o644
    assert leftovers(tmp_path / "out") == ["demo"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("path traversal", "climbs out of the package"),
        ("absolute path", "absolute path"),
        ("escaping symlink", "is a link"),
        ("inside symlink", "is a link"),
        ("hardlink", "is a link"),
        ("device file", "not a regular file or folder"),
        ("fifo", "not a regular file or folder"),
        ("two top folders", "more than one top folder"),
        ("file at the top", "at the top of the package"),
        ("duplicate entry", "appears twice"),
    ],
)
def test_a_malicious_archive_is_refused_and_leaves_nothing(
    tmp_path: Path, case: str, message: str
) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", malicious_archives()[case])
    install_root = tmp_path / "installed"

    with pytest.raises(PackageError, match=message):
        check_package(package)
    with pytest.raises(PackageError, match=message):
        extract_package(package, install_root / "demo", expected_sha256=sha256_hex(package))

    assert leftovers(install_root) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/ops-center-absolute.txt").exists()


def test_a_checksum_mismatch_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", members_of())

    with pytest.raises(ChecksumMismatch, match="checksum mismatch") as raised:
        extract_package(package, tmp_path / "installed" / "demo", expected_sha256="0" * 64)

    assert "expected 0000" in str(raised.value)
    assert leftovers(tmp_path / "installed") == []


def test_a_malformed_checksum_is_refused(tmp_path: Path) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", members_of())
    with pytest.raises(ValueError, match="not a SHA-256"):
        check_package(package, expected_sha256="abc")


def test_the_compressed_size_limit(tmp_path: Path) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", members_of())
    limits = PackageLimits(max_compressed_bytes=package.stat().st_size - 1)

    with pytest.raises(PackageError, match="more than the limit"):
        extract_package(package, tmp_path / "installed" / "demo", limits=limits)
    assert leftovers(tmp_path / "installed") == []


def test_a_zip_bomb_is_refused_by_its_unpacked_size(tmp_path: Path) -> None:
    top = "demo-plugin-1.0.0"
    bomb = Member(f"{top}/zeros.bin", b"\0" * (4 * 1024 * 1024))
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", [*members_of(), bomb])
    limits = PackageLimits(max_unpacked_bytes=1024 * 1024)
    assert package.stat().st_size < 64 * 1024  # small on the wire, big unpacked

    with pytest.raises(PackageError, match="unpacks to more than the limit"):
        extract_package(package, tmp_path / "installed" / "demo", limits=limits)
    assert leftovers(tmp_path / "installed") == []


def test_huge_tar_headers_count_against_the_unpacked_limit(tmp_path: Path) -> None:
    # A pax record is read into memory by the tar reader: it must be bounded too.
    package = tar_gz(
        tmp_path / "demo-plugin-1.0.0.tar.gz",
        members_of(),
        pax={"comment": "x" * (3 * 1024 * 1024)},
    )
    limits = PackageLimits(max_unpacked_bytes=1024 * 1024, max_entries=10)

    with pytest.raises(PackageError, match="unpacks to more than the limit"):
        check_package(package, limits=limits)


def test_too_many_entries(tmp_path: Path) -> None:
    top = "demo-plugin-1.0.0"
    extra = [Member(f"{top}/data/{n}.txt", b"x") for n in range(20)]
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", [*members_of(), *extra])

    with pytest.raises(PackageError, match="more than 10 entries"):
        check_package(package, limits=PackageLimits(max_entries=10))


def test_a_file_used_as_a_folder_is_refused(tmp_path: Path) -> None:
    top = "demo-plugin-1.0.0"
    clash = [Member(f"{top}/lib", b"x"), Member(f"{top}/lib/inner.py", b"y")]
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", [*members_of(), *clash])

    with pytest.raises(PackageError, match="which the package has as a file"):
        extract_package(package, tmp_path / "installed" / "demo")
    assert leftovers(tmp_path / "installed") == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([m for m in members_of() if not m.name.endswith("plugin.yaml")], "has no"),
        (
            [
                Member(m.name.replace("demo-plugin-1.0.0", "demo-plugin-2.0.0"), m.data, m.type)
                for m in members_of()
            ],
            "must be 'demo-plugin-1.0.0'",
        ),
        (
            [*members_of()[:1], Member("demo-plugin-1.0.0/plugin.yaml", b"id: Demo\n")],
            "manifest is not valid",
        ),
        ([], "empty"),
    ],
    ids=["no manifest", "top folder mismatch", "invalid manifest", "empty"],
)
def test_the_manifest_inside_must_match_the_package(
    tmp_path: Path, members: list[Member], message: str
) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", members)

    with pytest.raises(PackageError, match=message):
        extract_package(package, tmp_path / "installed" / "demo")
    assert leftovers(tmp_path / "installed") == []


def test_not_a_gzip_file(tmp_path: Path) -> None:
    package = tmp_path / "demo-plugin-1.0.0.tar.gz"
    package.write_bytes(b"this is not an archive")
    with pytest.raises(PackageError, match="not a readable"):
        check_package(package)

    truncated = tar_gz(tmp_path / "t.tar.gz", members_of())
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(PackageError, match="not a readable"):
        check_package(truncated)


def test_an_existing_destination_is_never_written_over(tmp_path: Path) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", members_of())
    destination = tmp_path / "installed"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")

    with pytest.raises(PackageError, match="already exists"):
        extract_package(package, destination)
    assert (destination / "keep.txt").read_text() == "mine"


def test_uncompressed_tar_members_are_what_tarfile_reads(tmp_path: Path) -> None:
    # The kit writes what it is told: a sanity check that the malicious entries are really there.
    package = tar_gz(tmp_path / "p.tar.gz", malicious_archives()["escaping symlink"])
    with tarfile.open(package) as tar:
        link = tar.getmember("demo-plugin-1.0.0/passwd")
    assert link.issym()
    assert link.linkname == "/etc/passwd"
