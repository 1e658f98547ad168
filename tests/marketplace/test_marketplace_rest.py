"""The marketplace REST API: publish, list and search, versions, download, and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_kit import (
    Member,
    malicious_archives,
    members_of,
    plugin_files,
    sha256_hex,
    tar_gz,
    write_plugin,
)
from fastapi import FastAPI

from conftest import client_for
from ops_center_sdk.host import create_host_app
from ops_center_sdk.host.marketplace import Marketplace
from ops_center_sdk.packaging import PackageLimits, build_package

MARKET = "/api/v1/marketplace/plugins"


def package_of(tmp_path: Path, plugin_id: str = "demo-plugin", version: str = "1.0.0") -> Path:
    folder = write_plugin(tmp_path / "src" / f"{plugin_id}-{version}", plugin_id, version)
    return build_package(folder, tmp_path / "dist").path


def upload_request(path: Path, sha256: str | None, headers: dict[str, str]) -> dict[str, Any]:
    sent = {
        "Content-Type": "application/gzip",
        "X-Checksum-Sha256": sha256 or sha256_hex(path),
        **headers,
    }
    return {"content": path.read_bytes(), "headers": sent}


async def upload(
    client: httpx.AsyncClient, path: Path, sha256: str | None = None, **headers: str
) -> httpx.Response:
    return await client.post(MARKET, **upload_request(path, sha256, headers))


def stored_files(data_dir: Path) -> list[str]:
    root = data_dir / "marketplace"
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".sha256")
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_publish_then_list_get_versions_and_download(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    package = package_of(tmp_path)

    published = await upload(client, package)

    assert published.status_code == 201, published.text
    body = published.json()
    assert body["plugin"]["id"] == "demo-plugin"
    assert body["plugin"]["latest_version"] == "1.0.0"
    assert body["package"]["sha256"] == sha256_hex(package)
    assert body["package"]["manifest"]["name"] == "Demo Plugin"
    listing = (await client.get(MARKET)).json()
    assert [item["id"] for item in listing["items"]] == ["demo-plugin"]
    assert listing["total"] == 1
    assert (await client.get(f"{MARKET}/demo-plugin")).json()["versions"] == ["1.0.0"]
    version = await client.get(f"{MARKET}/demo-plugin/versions/latest")
    assert version.json()["version"] == "1.0.0"
    download = await client.get(f"{MARKET}/demo-plugin/versions/1.0.0/download")
    assert download.status_code == 200
    assert download.content == package.read_bytes()
    assert download.headers["x-checksum-sha256"] == sha256_hex(package)
    assert "demo-plugin-1.0.0.tar.gz" in download.headers["content-disposition"]


async def test_versions_sort_by_semver_and_latest_follows(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    for version in ("1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0", "1.0.0"):
        response = await upload(client, package_of(tmp_path, version=version))
        assert response.status_code == 201, response.text

    versions = (await client.get(f"{MARKET}/demo-plugin/versions")).json()
    listing = (await client.get(f"{MARKET}/demo-plugin")).json()

    expected = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0"]
    assert [item["version"] for item in versions["items"]] == expected
    assert listing["versions"] == expected
    assert listing["latest_version"] == "2.0.0"


async def test_search_and_filters(client: httpx.AsyncClient, tmp_path: Path) -> None:
    for plugin_id, category, keyword in (
        ("cpu-watch", "monitoring", "cpu"),
        ("threat-scan", "security", "malware"),
    ):
        folder = tmp_path / "src" / plugin_id
        folder.mkdir(parents=True)
        files = plugin_files(plugin_id, category=category, keyword=keyword)
        for name, text in files.items():
            (folder / name).write_text(text)
        built = build_package(folder, tmp_path / "dist")
        assert (await upload(client, built.path)).status_code == 201

    async def ids(**params: str) -> list[str]:
        response = await client.get(MARKET, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids() == ["cpu-watch", "threat-scan"]
    assert await ids(q="MALWARE") == ["threat-scan"]
    assert await ids(q="watch") == ["cpu-watch"]
    assert await ids(category="security") == ["threat-scan"]
    assert await ids(type="backend", page_size="1", page="2") == ["threat-scan"]
    assert await ids(q="nothing-like-this") == []
    assert (await client.get(MARKET, params={"catgory": "ai"})).status_code == 422


async def test_an_existing_version_is_409_and_never_replaced(
    client: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    first = package_of(tmp_path)
    assert (await upload(client, first)).status_code == 201
    stored = data_dir / "marketplace" / "packages" / "demo-plugin" / "demo-plugin-1.0.0.tar.gz"
    original = stored.read_bytes()

    different = write_plugin(tmp_path / "changed", "demo-plugin", "1.0.0")
    (different / "extra.txt").write_text("not the same package")
    again = await upload(client, build_package(different, tmp_path / "dist2").path)

    assert again.status_code == 409
    assert error_of(again)["code"] == "version_exists"
    assert "never replaced" in error_of(again)["message"]
    assert stored.read_bytes() == original
    assert (await client.get(f"{MARKET}/demo-plugin")).json()["versions"] == ["1.0.0"]
    assert stored_files(data_dir) == ["packages/demo-plugin/demo-plugin-1.0.0.tar.gz"]


async def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    package = package_of(tmp_path)

    response = await upload(client, package, sha256="f" * 64)

    assert response.status_code == 422
    assert error_of(response)["code"] == "checksum_mismatch"
    assert "f" * 64 in error_of(response)["message"]
    assert stored_files(data_dir) == []
    assert (await client.get(MARKET)).json()["total"] == 0


async def test_a_missing_or_malformed_checksum_is_a_400(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    package = package_of(tmp_path)

    missing = await client.post(
        MARKET, content=package.read_bytes(), headers={"Content-Type": "application/gzip"}
    )
    malformed = await upload(client, package, sha256="xyz")

    assert missing.status_code == 400
    assert "X-Checksum-Sha256" in error_of(missing)["message"]
    assert malformed.status_code == 400
    assert "not a SHA-256" in error_of(malformed)["message"]


@pytest.mark.parametrize("case", sorted(malicious_archives()))
async def test_a_malicious_archive_is_refused_on_upload(
    client: httpx.AsyncClient, tmp_path: Path, data_dir: Path, case: str
) -> None:
    package = tar_gz(tmp_path / "demo-plugin-1.0.0.tar.gz", malicious_archives()[case])

    response = await upload(client, package)

    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "package_refused"
    assert stored_files(data_dir) == []
    assert (await client.get(MARKET)).json()["total"] == 0
    assert not (tmp_path / "escaped.txt").exists()


async def test_an_invalid_plugin_inside_is_refused_with_its_findings(
    client: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    folder = write_plugin(tmp_path / "src", "demo-plugin", "1.0.0")
    manifest = (folder / "plugin.yaml").read_text()
    (folder / "plugin.yaml").write_text(manifest.replace("on_device_created", "on_device_create"))

    response = await upload(client, build_package(folder, tmp_path / "dist").path)

    assert response.status_code == 422
    error = error_of(response)
    assert "not a valid plugin" in error["message"]
    assert any("on_device_create" in detail["message"] for detail in error["details"])
    assert stored_files(data_dir) == []


async def test_size_limits_compressed_and_unpacked(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    package = package_of(tmp_path)
    market: Marketplace = app.state.marketplace
    app.state.marketplace = Marketplace(
        market.root, market.store, limits=PackageLimits(max_compressed_bytes=100)
    )
    too_big = await upload(client, package)
    assert too_big.status_code == 413

    bomb_member = Member("demo-plugin-1.0.0/zeros.bin", b"\0" * (2 * 1024 * 1024))
    bomb = tar_gz(tmp_path / "bomb.tar.gz", [*members_of(), bomb_member])
    app.state.marketplace = Marketplace(
        market.root, market.store, limits=PackageLimits(max_unpacked_bytes=1024 * 1024)
    )
    refused = await upload(client, bomb)
    assert refused.status_code == 422
    assert "unpacks to more than the limit" in error_of(refused)["message"]
    assert stored_files(data_dir) == []


async def test_bodies_over_the_host_limit_still_reach_the_upload(tmp_path: Path) -> None:
    app = create_host_app(admin_key="k", max_body_bytes=256)
    package = package_of(tmp_path)
    assert package.stat().st_size > 256
    async with client_for(app, "k") as http:
        published = await upload(http, package)
        other = await http.post(
            "/api/v1/devices", content=b"x" * 512, headers={"Content-Type": "application/json"}
        )
    assert published.status_code == 201, published.text
    assert other.status_code == 413


async def test_permissions_to_read_and_to_publish(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    reader = app.state.keys.issue("reader", ["plugins:read"])
    nobody = app.state.keys.issue("nobody", ["devices:read"])
    package = package_of(tmp_path)

    async with client_for(app, reader) as as_reader, client_for(app, nobody) as as_nobody:
        assert (await upload(as_reader, package)).status_code == 403
        assert (await as_nobody.get(MARKET)).status_code == 403
        assert (await upload(client, package)).status_code == 201
        assert (await as_reader.get(MARKET)).json()["total"] == 1
    async with client_for(app, None) as anonymous:
        assert (await anonymous.get(MARKET)).status_code == 401


async def test_the_body_must_be_the_package(client: httpx.AsyncClient, tmp_path: Path) -> None:
    package = package_of(tmp_path)

    form = await upload(client, package, **{"Content-Type": "multipart/form-data; boundary=x"})
    empty = await client.post(MARKET, content=b"", headers={"X-Checksum-Sha256": "e3b0" + "0" * 60})

    assert form.status_code == 415
    assert empty.status_code == 422
    assert "empty" in error_of(empty)["message"]


async def test_unknown_plugins_and_versions_are_404(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.get(f"{MARKET}/nothing")).status_code == 404
    assert (await client.get(f"{MARKET}/nothing/versions")).status_code == 404
    assert (await upload(client, package_of(tmp_path))).status_code == 201
    missing = await client.get(f"{MARKET}/demo-plugin/versions/9.9.9/download")
    assert missing.status_code == 404
    assert "9.9.9" in error_of(missing)["message"]
