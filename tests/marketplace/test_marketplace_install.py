"""Installing a published package into the local Ops-Center's plugin host, by id and version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from archive_kit import malicious_archives, sha256_hex, tar_gz, write_plugin
from fastapi import FastAPI

from conftest import ADMIN_KEY, client_for
from ops_center_sdk.host.marketplace import PACKAGE_KIND, Marketplace
from ops_center_sdk.host.server import create_server_app
from ops_center_sdk.packaging import build_package

MARKET = "/api/v1/marketplace/plugins"


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[FastAPI]:
    app = create_server_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(server: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server) as client:
        yield client


async def publish(http: httpx.AsyncClient, tmp_path: Path, version: str) -> None:
    folder = write_plugin(tmp_path / "src" / version, "demo-plugin", version)
    built = build_package(folder, tmp_path / "dist")
    response = await http.post(
        MARKET,
        content=built.path.read_bytes(),
        headers={"Content-Type": "application/gzip", "X-Checksum-Sha256": built.sha256},
    )
    assert response.status_code == 201, response.text


def unpacked(data_dir: Path) -> list[str]:
    folder = data_dir / "marketplace" / "installed"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir()) if folder.exists() else []


async def test_install_a_published_version_and_upgrade_it(
    http: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    await publish(http, tmp_path, "1.0.0")
    await publish(http, tmp_path, "1.1.0")

    installed = await http.post(f"{MARKET}/demo-plugin/versions/1.0.0/install")

    assert installed.status_code == 201, installed.text
    assert installed.json()["package"]["version"] == "1.0.0"
    status = await http.get("/plugins/demo-plugin/status")
    assert status.json() == {"version": "1.0.0", "devices": 0}
    described = (await http.get("/api/v1/plugins/demo-plugin")).json()
    assert described["source"]["type"] == "marketplace"
    assert described["source"]["version"] == "1.0.0"
    assert unpacked(data_dir) == ["demo-plugin-1.0.0"]

    twice = await http.post(f"{MARKET}/demo-plugin/versions/latest/install")
    assert twice.status_code == 409
    assert unpacked(data_dir) == ["demo-plugin-1.0.0"]
    error = twice.json()["error"]
    assert error["code"] == "conflict"
    assert "to replace it with demo-plugin 1.1.0 from the marketplace" in error["message"]
    assert f"POST {MARKET}/demo-plugin/versions/latest/install?replace=true" in error["message"]
    assert error["details"][0]["field"] == "query.replace"

    upgraded = await http.post(f"{MARKET}/demo-plugin/versions/latest/install?replace=true")
    assert upgraded.status_code == 201, upgraded.text
    assert (await http.get("/plugins/demo-plugin/status")).json()["version"] == "1.1.0"
    assert unpacked(data_dir) == ["demo-plugin-1.1.0"]


async def test_installing_over_the_dev_folder_says_how_to_replace_it(
    server: FastAPI, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # docs/marketplace.md's steps: `dev` serves the folder, then its package is installed.
    await server.state.plugins.install_folder(write_plugin(tmp_path / "dev", "demo-plugin"))
    await publish(http, tmp_path, "1.0.0")

    refused = await http.post(f"{MARKET}/demo-plugin/versions/1.0.0/install?enable=false")

    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert f"(from {tmp_path / 'dev'})" in message
    expected = f"POST {MARKET}/demo-plugin/versions/1.0.0/install?enable=false&replace=true"
    assert expected in message
    replaced = await http.post(f"{MARKET}/demo-plugin/versions/1.0.0/install?replace=true")
    assert replaced.status_code == 201, replaced.text
    described = (await http.get("/api/v1/plugins/demo-plugin")).json()
    assert described["source"]["type"] == "marketplace"


@pytest.mark.parametrize("case", ["path traversal", "escaping symlink", "hardlink"])
async def test_a_malicious_stored_package_is_refused_on_install(
    server: FastAPI, http: httpx.AsyncClient, tmp_path: Path, data_dir: Path, case: str
) -> None:
    # A package that got into the store without passing upload (an older tool, a copied folder).
    market: Marketplace = server.state.marketplace
    folder = market.packages_dir / "demo-plugin"
    folder.mkdir(parents=True)
    package = tar_gz(folder / "demo-plugin-1.0.0.tar.gz", malicious_archives()[case])
    market.store.insert(
        PACKAGE_KIND,
        {
            "id": "demo-plugin@1.0.0",
            "plugin_id": "demo-plugin",
            "version": "1.0.0",
            "filename": package.name,
            "sha256": sha256_hex(package),
            "manifest": {},
        },
    )

    response = await http.post(f"{MARKET}/demo-plugin/versions/1.0.0/install")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "package_refused"
    assert unpacked(data_dir) == []
    assert not (data_dir / "marketplace" / "escaped.txt").exists()
    assert (await http.get("/api/v1/plugins/demo-plugin")).status_code == 404


async def test_a_package_changed_after_publishing_is_refused_on_install(
    server: FastAPI, http: httpx.AsyncClient, tmp_path: Path, data_dir: Path
) -> None:
    await publish(http, tmp_path, "1.0.0")
    market: Marketplace = server.state.marketplace
    stored = market.package_path("demo-plugin", "1.0.0")
    stored.write_bytes(stored.read_bytes()[:-8] + b"tampered")

    response = await http.post(f"{MARKET}/demo-plugin/versions/1.0.0/install")

    assert response.status_code == 422
    assert "checksum mismatch" in response.json()["error"]["message"]
    assert unpacked(data_dir) == []


async def test_a_host_without_a_plugin_host_cannot_install(tmp_path: Path) -> None:
    from ops_center_sdk.host import create_host_app

    app = create_host_app(admin_key=ADMIN_KEY)
    async with client_for(app) as client:
        await publish(client, tmp_path, "1.0.0")
        response = await client.post(f"{MARKET}/demo-plugin/versions/1.0.0/install")
    assert response.status_code == 503
    assert "ops-center-plugin dev" in response.json()["error"]["message"]
