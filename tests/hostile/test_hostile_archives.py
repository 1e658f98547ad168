"""Hostile packages: crafted archives are refused with a PackageError, never anything else.

Each example is a package an attacker could upload: a valid plugin plus
members with climbing, absolute, non-UTF-8 or duplicate names, links that
escape, devices, sizes the data does not back, and bytes truncated or
garbled at the tar or the gzip level. ``check_package`` and
``extract_package`` either accept it (and then what was written is plain
files inside the destination) or raise :class:`PackageError` with a
message; nothing lands outside the destination. A smaller run goes through
the marketplace's upload endpoint: 201, or 4xx in the REST error shape.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_center_sdk.host import create_host_app
from ops_center_sdk.packaging import (
    PackageContents,
    PackageError,
    PackageLimits,
    check_package,
    extract_package,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))

from archive_kit import members_of

#: Examples each property runs (the report quotes these).
ARCHIVE_EXAMPLES = 200
UPLOAD_EXAMPLES = 60

TOP = "demo-plugin-1.0.0"
#: Where an absolute member name points: it must never be created.
ABSOLUTE_TARGET = Path(tempfile.gettempdir()) / f"ops-center-fuzz-{uuid.uuid4().hex}"
LIMITS = PackageLimits(max_compressed_bytes=1 << 20, max_unpacked_bytes=1 << 20, max_entries=50)


@dataclass(frozen=True)
class Crafted:
    """One hand-made tar member: anything tarfile can write, checked or not."""

    name: str
    kind: bytes
    data: bytes
    linkname: str
    declared_size: int | None  # a size the data does not back


name_parts = st.sampled_from(
    [
        TOP,
        TOP,
        "..",
        ".",
        "",
        "a",
        "plugin.yaml",
        "main.py",
        "C:",
        "a\\b",
        "\udcff\udcfe",
        "é",
        "x" * 120,
        "dev",
        "\x00x",
    ]
)
names = st.lists(name_parts, min_size=1, max_size=4).map("/".join) | st.sampled_from(
    [
        str(ABSOLUTE_TARGET),
        f"{TOP}/../{ABSOLUTE_TARGET.name}",
        f"{TOP}/main.py",
        f"{TOP}/a/../../up",
    ]
)
kinds = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.REGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
        tarfile.GNUTYPE_SPARSE,
    ]
)
links = st.sampled_from(["../../etc/passwd", "/etc/passwd", "main.py", str(ABSOLUTE_TARGET), ""])
crafted = st.builds(
    Crafted,
    name=names,
    kind=kinds,
    data=st.binary(max_size=40),
    linkname=links,
    declared_size=st.none() | st.sampled_from([1, 10**6, 10**11, 8**11 - 1, 2**63]),
)
#: What is done to the bytes: (where, how, at which fraction, which byte).
damage = st.none() | st.tuples(
    st.sampled_from(["tar", "gzip"]),
    st.sampled_from(["truncate", "flip", "garbage"]),
    st.floats(0, 1),
    st.integers(0, 255),
)


def _tar_bytes(members: list[Crafted], fmt: int) -> bytes:
    raw = io.BytesIO()
    good = [Crafted(m.name, m.type, m.data, m.linkname, None) for m in members_of()]
    with tarfile.open(fileobj=raw, mode="w", format=fmt, errors="surrogateescape") as tar:
        for member in [*good, *members]:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.linkname = member.linkname
            info.mode = 0o644
            backed = member.kind in (tarfile.REGTYPE, tarfile.CONTTYPE)
            try:
                if backed and member.declared_size is None:
                    info.size = len(member.data)
                    tar.addfile(info, io.BytesIO(member.data))
                else:
                    info.size = member.declared_size or 0
                    tar.addfile(info)  # a header only: the declared data never follows
            except (ValueError, tarfile.HeaderError, UnicodeError):
                continue  # not even writable in this format (checked before writing)
    return raw.getvalue()


def _damaged(data: bytes, how: str, where: float, byte: int) -> bytes:
    at = int(len(data) * where)
    if how == "truncate":
        return data[:at]
    if how == "flip":
        return data[:at] + bytes([byte]) + data[at + 1 :]
    return data[:at] + bytes([byte]) * 64 + data[at:]


def build(members: list[Crafted], fmt: int, harm: tuple[str, str, float, int] | None) -> bytes:
    tar = _tar_bytes(members, fmt)
    if harm is not None and harm[0] == "tar":
        tar = _damaged(tar, *harm[1:])
    packed = gzip.compress(tar, mtime=0)
    if harm is not None and harm[0] == "gzip":
        packed = _damaged(packed, *harm[1:])
    return packed


def _everything_under(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder, name) for name in dirs + files]
    return found


archives = st.tuples(
    st.lists(crafted, max_size=4),
    st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]),
    damage,
)


@settings(
    max_examples=ARCHIVE_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(archives)
def test_a_crafted_archive_is_accepted_safely_or_a_package_error(
    archive: tuple[list[Crafted], int, tuple[str, str, float, int] | None],
) -> None:
    members, fmt, harm = archive
    with tempfile.TemporaryDirectory() as scratch:
        case = Path(scratch)
        package = case / "demo-plugin-1.0.0.tar.gz"
        package.write_bytes(build(members, fmt, harm))
        destination = case / "out" / "plugin"
        outcomes: list[PackageContents | PackageError] = []
        for run in (
            lambda: check_package(package, limits=LIMITS),
            lambda: extract_package(
                package,
                destination,
                expected_sha256=hashlib.sha256(package.read_bytes()).hexdigest(),
                limits=LIMITS,
            ),
        ):
            try:
                outcomes.append(run())
            except PackageError as error:
                outcomes.append(error)
        for outcome in outcomes:
            assert not isinstance(outcome, PackageError) or str(outcome), "it says what is wrong"
        checked, extracted = outcomes
        # check and extract agree on whether the package is acceptable.
        assert isinstance(checked, PackageError) == isinstance(extracted, PackageError), outcomes
        written = _everything_under(case)
        assert not ABSOLUTE_TARGET.exists(), "an absolute member name was written"
        assert not (case / ABSOLUTE_TARGET.name).exists()
        for path in written:
            assert path == package or path.is_relative_to(case / "out"), f"{path} escaped"
            assert not path.is_symlink(), f"{path} is a link"
            assert path.is_dir() or path.is_file()
        if isinstance(extracted, PackageError):
            assert not destination.exists(), "a refused package left its destination"
            assert [p for p in written if p != package] in ([], [case / "out"])
        else:
            files = sorted(
                p.relative_to(destination).as_posix()
                for p in written
                if p.is_file() and p != package
            )
            assert files == sorted(path for path, _ in extracted.files)
            for path, _ in extracted.files:
                path.encode("utf-8")  # only UTF-8 names are accepted


def test_a_huge_declared_size_and_a_truncated_body_are_package_errors(tmp_path: Path) -> None:
    huge = Crafted(f"{TOP}/big.bin", tarfile.REGTYPE, b"", "", 10**11)
    for harm in (None, ("gzip", "truncate", 0.5, 0), ("tar", "garbage", 0.01, 0xFF)):
        package = tmp_path / "p.tar.gz"
        package.write_bytes(build([huge], tarfile.PAX_FORMAT, harm))
        with pytest.raises(PackageError, match=r"\w"):
            check_package(package, limits=LIMITS)


def test_a_non_utf8_member_name_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    odd = Crafted(f"{TOP}/caf\udce9.py", tarfile.REGTYPE, b"x = 1\n", "", None)
    package = tmp_path / "p.tar.gz"
    package.write_bytes(build([odd], tarfile.GNU_FORMAT, None))
    with pytest.raises(PackageError, match="is not a UTF-8 name"):
        extract_package(package, tmp_path / "out", limits=LIMITS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tar.gz"]


def test_build_refuses_a_file_whose_name_is_not_utf8(tmp_path: Path) -> None:
    from archive_kit import write_plugin

    from ops_center_sdk.packaging import build_package

    folder = write_plugin(tmp_path / "src")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as out:
        out.write(b"x")
    with pytest.raises(PackageError, match=r"caf\\udce9\.txt.* not UTF-8"):
        build_package(folder, tmp_path / "dist")


# ==================== through the marketplace ====================


def test_a_crafted_upload_answers_201_or_a_4xx_error(tmp_path: Path) -> None:
    import httpx

    loop = asyncio.new_event_loop()
    app = create_host_app(data_dir=tmp_path / "data", admin_key="fuzz-admin")
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ops.test",
        headers={"Authorization": "Bearer fuzz-admin"},
    )
    statuses: dict[int, int] = {}
    try:

        @settings(
            max_examples=UPLOAD_EXAMPLES,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(archives)
        def upload(archive: tuple[list[Crafted], int, tuple[str, str, float, int] | None]) -> None:
            body = build(*archive)
            response = loop.run_until_complete(
                client.post(
                    "/api/v1/marketplace/plugins",
                    content=body,
                    headers={
                        "Content-Type": "application/gzip",
                        "X-Checksum-Sha256": hashlib.sha256(body).hexdigest(),
                    },
                )
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (201, 409) or 400 <= response.status_code < 500, (
                response.text
            )
            if response.status_code != 201:
                error = response.json()["error"]
                assert set(error) == {"code", "message", "details"}
                assert error["message"]

        upload()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(app.state.bus.aclose())
        app.state.store.close()
        loop.close()
    assert sum(statuses.values()) >= UPLOAD_EXAMPLES // 2
    assert not any(status >= 500 for status in statuses)
    incoming = tmp_path / "data" / "marketplace" / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir()), "an upload left files behind"
