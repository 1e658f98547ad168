"""Hostile marketplace uploads: a parser bomb and a remote ``$ref`` are 4xx at once.

Before issue 11 a package whose main.py held 100,000 nested operators made
the upload answer 500, and a ``config_schema`` ``$ref`` to a remote server
made the host connect to it and wait.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback_kit import holding_server

from ops_center_sdk.host import create_host_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))

from archive_kit import Member, members_of, tar_gz

MARKET = "/api/v1/marketplace/plugins"
ADMIN_KEY = "hostile-upload-admin"
TOP = "demo-plugin-1.0.0"
DEPTH = 100_000


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_host_app(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ops.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as http:
        yield http
    await app.state.bus.aclose()
    app.state.store.close()


def package_with(tmp_path: Path, replace: dict[str, str], name: str = "p") -> Path:
    """The demo plugin's package with some files' text replaced (no checks on the way)."""
    members = [
        Member(m.name, replace[m.name].encode(), m.type, m.linkname, m.mode)
        if m.name in replace
        else m
        for m in members_of()
    ]
    return tar_gz(tmp_path / f"{name}.tar.gz", members)


async def upload(client: httpx.AsyncClient, package: Path) -> httpx.Response:
    body = package.read_bytes()  # noqa: ASYNC240 - a small local file, read once
    return await client.post(
        MARKET,
        content=body,
        headers={
            "Content-Type": "application/gzip",
            "X-Checksum-Sha256": hashlib.sha256(body).hexdigest(),
        },
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def _main_with(line: str) -> str:
    main = next(m for m in members_of() if m.name == f"{TOP}/main.py").data.decode()
    return main + "\n" + line + "\n"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("x = " + "-" * DEPTH + "1", "nested too deeply for the parser"),
        ("x = " + "not " * DEPTH + "1", "nested too deeply for the parser"),
        ("x = " + "(" * DEPTH + "1" + ")" * DEPTH, "nested too deeply for the parser"),
        ("x = " + "[" * DEPTH + "]" * DEPTH, "nested too deeply for the parser"),
        ("x = " + "+".join(["1"] * DEPTH), "nested too deeply for the parser"),
        ("x = " + "a." * DEPTH + "b", "nested too deeply for the parser"),
    ],
    ids=["unary-minus", "not", "parentheses", "brackets", "plus-chain", "attributes"],
)
async def test_a_parser_bomb_in_main_py_is_a_4xx_explaining_the_limit(
    client: httpx.AsyncClient, tmp_path: Path, line: str, words: str
) -> None:
    package = package_with(tmp_path, {f"{TOP}/main.py": _main_with(line)})
    started = time.monotonic()
    response = await upload(client, package)
    elapsed = time.monotonic() - started
    assert 400 <= response.status_code < 500, response.text[:500]
    error = error_of(response)
    assert "main.py" in error["message"]
    assert words in error["message"]
    assert any("split" in (detail.get("fix") or "") for detail in error["details"])
    assert elapsed < 5.0
    assert (await client.get(MARKET)).json()["total"] == 0


async def test_a_remote_ref_in_the_uploaded_manifest_is_a_4xx_and_nothing_is_fetched(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with holding_server() as server:
        manifest = next(m for m in members_of() if m.name == f"{TOP}/plugin.yaml").data.decode()
        manifest += (
            f"config_schema:\n  type: object\n  properties:\n    x: {{$ref: '{server.url}'}}\n"
        )
        package = package_with(tmp_path, {f"{TOP}/plugin.yaml": manifest})
        started = time.monotonic()
        response = await upload(client, package)
        elapsed = time.monotonic() - started
        assert server.connections == []
    assert elapsed < 1.0
    assert 400 <= response.status_code < 500, response.text[:500]
    error = error_of(response)
    assert server.url in error["message"]
    assert "$ref" in error["message"]
    assert (await client.get(MARKET)).json()["total"] == 0


def test_the_parser_bomb_packages_are_real_tar_files(tmp_path: Path) -> None:
    package = package_with(tmp_path, {f"{TOP}/main.py": _main_with("x = " + "-" * DEPTH + "1")})
    with tarfile.open(package) as tar:
        main = tar.extractfile(f"{TOP}/main.py")
        assert main is not None
        assert len(main.read()) > DEPTH
