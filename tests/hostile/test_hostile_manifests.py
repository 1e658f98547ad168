"""Hostile plugin.yaml files: no network, no endless recursion, always a ManifestError."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback_kit import holding_server

from ops_center_sdk.errors import ManifestError
from ops_center_sdk.manifest import Manifest, parse_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_plugins"))

import contextlib

from plugin_kit import error_of, running_host, write_plugin

BASE = "id: my-plugin\nname: My Plugin\nversion: 1.0.0\n"
MAIN = 'from ops_center_sdk import Plugin\n\nplugin = Plugin(id="{id}", version="1.0.0")\n'


def schema_manifest(schema_yaml: str) -> str:
    return BASE + "config_schema:\n" + schema_yaml


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("a: &x [*x]\n" + BASE, "", "inside the anchor"),
        (schema_manifest("  $schema: 1\n  type: object\n"), "config_schema.$schema", "draft"),
        (schema_manifest("  $schema: nope\n"), "config_schema.$schema", "unknown JSON Schema"),
        (
            schema_manifest(
                "  type: object\n  properties:\n    a: {type: string, pattern: '([', default: x}\n"
            ),
            "config_schema.properties.a.pattern",
            "not a valid regular expression",
        ),
        (
            schema_manifest(
                "  type: object\n  $defs:\n    a: {$ref: '#/$defs/a'}\n"
                "  properties:\n    x: {$ref: '#/$defs/a', default: 1}\n"
            ),
            "config_schema.$defs.a.$ref",
            "never end",
        ),
        (schema_manifest("  $ref: '#'\n  type: object\n"), "config_schema.$ref", "never end"),
        (
            schema_manifest("  type: object\n  properties:\n    x: {$ref: '#/$defs/missing'}\n"),
            "config_schema.properties.x.$ref",
            "does not point",
        ),
    ],
)
def test_hostile_manifests_are_manifest_errors(text: str, field: str, words: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    problem = caught.value.problems[0]
    assert problem.path == field
    assert words in problem.message


def test_a_remote_ref_is_refused_without_any_request() -> None:
    with holding_server() as server:
        started = time.monotonic()
        with pytest.raises(ManifestError) as caught:
            parse_manifest(
                schema_manifest(f"  type: object\n  properties:\n    x: {{$ref: '{server.url}'}}\n")
            )
        assert time.monotonic() - started < 1.0
        assert server.connections == []
    problem = caught.value.problems[0]
    assert problem.path == "config_schema.properties.x.$ref"
    assert server.url in problem.message
    assert "refers outside the document" in problem.message


def test_local_and_recursive_refs_still_work() -> None:
    manifest = parse_manifest(
        schema_manifest(
            "  type: object\n  $defs:\n    node:\n      type: object\n"
            "      properties:\n        children: {type: array, items: {$ref: '#/$defs/node'}}\n"
            "  properties:\n    tree: {$ref: '#/$defs/node', default: {children: [{}]}}\n"
        )
    )
    assert manifest.config_schema is not None


async def test_install_with_a_remote_ref_answers_at_once_and_fetches_nothing(
    tmp_path: Path,
) -> None:
    with holding_server() as server:
        folder = write_plugin(
            tmp_path / "ssrf",
            "ssrf-plugin",
            MAIN.format(id="ssrf-plugin"),
            f"config_schema:\n  type: object\n  properties:\n    x: {{$ref: '{server.url}'}}\n",
        )
        async with running_host(tmp_path / "data") as host:
            started = time.monotonic()
            install = asyncio.ensure_future(host.install(folder))
            health = await host.http.get("/api/v1/health")
            response = await install
            assert health.status_code == 200
            assert time.monotonic() - started < 1.0
        assert server.connections == []
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_manifest"
    assert server.url in error["message"]


async def test_a_check_over_the_budget_is_a_422_naming_it(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "slow", "slow-plugin", MAIN.format(id="slow-plugin"))
    async with running_host(tmp_path / "data") as host:
        host.app.state.check_budget = 1e-9
        response = await host.install(folder)
        assert response.status_code == 422
        error = error_of(response)
        assert error["code"] == "check_too_slow"
        assert "budget of 1e-09 s" in error["message"]
        assert (await host.http.get("/api/v1/plugins")).json()["total"] == 0


async def test_a_page_beyond_sqlite_integers_is_a_422(tmp_path: Path) -> None:
    async with running_host(tmp_path / "data") as host:
        response = await host.http.get("/api/v1/devices", params={"page": "9" * 20})
    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "query.page"


yaml_text = st.text(alphabet=st.sampled_from(list("ab:- &*[]{}'\"#\n!|>,?%@`\\0.1")), max_size=60)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(yaml_text)
def test_any_yaml_text_is_a_manifest_or_a_manifest_error(text: str) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(BASE + text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from(["id", "name", "version", "config_schema", "hooks", "$ref", "x"]),
        json_values,
        max_size=5,
    )
)
def test_any_mapping_is_a_manifest_or_a_manifest_error(data: dict[str, object]) -> None:
    with contextlib.suppress(ManifestError):
        Manifest.from_dict(data)
