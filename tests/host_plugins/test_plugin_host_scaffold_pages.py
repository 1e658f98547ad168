"""The pages `init` writes (frontend, hybrid) load through the host: page and
script without a key, their data only with one, which the page asks for."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_kit import ADMIN_KEY, RunningHost

from ops_center_sdk.cli.main import main

DATA_ROUTE = {"frontend": "summary", "hybrid": "devices"}


@pytest.mark.parametrize("kind", ["frontend", "hybrid"])
async def test_the_scaffold_page_is_public_and_its_data_needs_a_key(
    kind: str, host: RunningHost, plugins_dir: Path
) -> None:
    folder = plugins_dir / f"{kind}-view"
    assert main(["init", str(folder), "--type", kind]) == 0
    assert (await host.install(folder)).status_code == 201
    base = f"/plugins/{kind}-view"

    async with host.client(None) as anonymous:
        page = await anonymous.get(base + "/")
        script = await anonymous.get(base + "/app.js")
        data = await anonymous.get(f"{base}/{DATA_ROUTE[kind]}")
    assert page.status_code == 200
    assert 'id="key-form"' in page.text
    assert script.status_code == 200
    assert "Authorization" in script.text
    assert data.status_code == 401

    async with host.client(ADMIN_KEY) as operator:
        served = await operator.get(f"{base}/{DATA_ROUTE[kind]}")
    assert served.status_code == 200

    described = (await host.http.get(f"/api/v1/plugins/{kind}-view")).json()
    public = {route["path"] for route in described["routes"] if route["public"]}
    assert public == {base + "/", base + "/app.js"}
