"""plugin.yaml: the spec's example loads; every rule names the field, the fix and the line."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from ops_center_sdk.errors import ManifestError, Problem
from ops_center_sdk.manifest import (
    HookEntry,
    Manifest,
    PluginMetadata,
    Pricing,
    load_manifest,
    parse_manifest,
)
from ops_center_sdk.permissions import ALL_PERMISSIONS, REQUIRED_PERMISSION, RESOURCES
from ops_center_sdk.yaml_source import format_path, load_yaml_with_lines, syntax_problem

FIXTURES = Path(__file__).parent / "fixtures"
SPEC_MANIFEST = FIXTURES / "spec-plugin.yaml"

BASE = "id: my-plugin\nname: My Plugin\nversion: 1.0.0\n"  # lines 1-3


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    return caught.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# ==================== the spec's example ====================


def test_spec_example_manifest_validates() -> None:
    manifest = load_manifest(SPEC_MANIFEST)

    assert manifest.id == "my-plugin"
    assert manifest.metadata.version == "1.0.0"
    assert manifest.metadata.id == "my-plugin"
    assert manifest.type == "backend"
    assert manifest.category == "monitoring"
    assert manifest.license == "MIT"
    assert manifest.keywords == ("monitoring", "devices", "automation")
    assert manifest.pricing == Pricing(model="free", price=0, currency="USD")
    assert manifest.permissions == ("devices:read", "devices:write", "alerts:write", "users:read")
    assert [(hook.event, hook.handler) for hook in manifest.hooks] == [
        ("device.created", "on_device_created"),
        ("device.metrics_updated", "on_metrics_updated"),
    ]
    assert [(route.path, route.methods, route.handler) for route in manifest.routes] == [
        ("/status", ("GET",), "get_status"),
        ("/devices/{device_id}/stats", ("GET",), "get_device_stats"),
    ]
    assert manifest.config_schema is not None
    assert manifest.config_schema["properties"]["threshold"]["default"] == 0.8
    assert (manifest.runtime.type, manifest.runtime.version, manifest.runtime.entrypoint) == (
        "python",
        "3.11+",
        "main.py",
    )


def test_load_manifest_accepts_the_plugin_folder(tmp_path: Path) -> None:
    (tmp_path / "plugin.yaml").write_text(SPEC_MANIFEST.read_text())
    assert load_manifest(tmp_path) == load_manifest(SPEC_MANIFEST)


def test_round_trip_through_dict_and_yaml() -> None:
    manifest = load_manifest(SPEC_MANIFEST)
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert parse_manifest(manifest.to_yaml()) == manifest
    data = manifest.to_dict()
    assert list(data)[:3] == ["id", "name", "version"]
    assert data["routes"][0]["methods"] == ["GET"]


def test_metadata_is_frozen_and_has_every_metadata_field() -> None:
    metadata = load_manifest(SPEC_MANIFEST).metadata
    assert isinstance(metadata, PluginMetadata)
    assert metadata.name == "My Awesome Plugin"
    assert metadata.homepage == "https://github.com/yourorg/my-plugin"
    assert not hasattr(metadata, "hooks")
    with pytest.raises(pydantic.ValidationError):
        metadata.version = "2.0.0"


def test_minimal_manifest_gets_defaults() -> None:
    manifest = parse_manifest(BASE)
    assert manifest.type == "backend"
    assert manifest.category is None
    assert manifest.description == ""
    assert manifest.pricing.model == "free"
    assert manifest.runtime.entrypoint == "main.py"
    assert manifest.hooks == ()
    assert manifest.routes == ()


def test_permissions_absent_is_none_and_empty_list_is_empty() -> None:
    assert parse_manifest(BASE).permissions is None
    assert parse_manifest(BASE + "permissions: []\n").permissions == ()


def test_null_lists_are_empty() -> None:
    manifest = parse_manifest(BASE + "keywords:\nhooks:\nroutes:\n")
    assert manifest.keywords == ()
    assert manifest.hooks == ()
    assert manifest.routes == ()


# ==================== files and YAML ====================


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "nope" / "plugin.yaml")
    assert str(tmp_path / "nope" / "plugin.yaml") in str(caught.value)


def test_folder_without_manifest_mentions_plugin_yml(tmp_path: Path) -> None:
    (tmp_path / "plugin.yml").write_text(BASE)
    with pytest.raises(ManifestError, match=r"rename it to plugin\.yaml"):
        load_manifest(tmp_path)


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "plugin.yaml"
    file.write_text(BASE + "keywords: [a, b\nlicense: MIT\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(file)
    (problem,) = caught.value.problems
    assert problem.file == str(file)
    assert problem.line == 5
    assert "column" in problem.message
    assert "invalid YAML" in problem.message


@pytest.mark.parametrize("text", ["- id: x\n- name: y\n", "just a string\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    problem = only_problem(text)
    assert "must be a mapping" in problem.message
    assert problem.line == 1


def test_empty_file_is_refused() -> None:
    with pytest.raises(ManifestError, match="empty"):
        parse_manifest("# nothing here\n")


def test_key_written_twice_is_reported_with_both_lines() -> None:
    problem = only_problem(BASE + "license: MIT\nlicense: Apache-2.0\n")
    assert problem.path == "license"
    assert problem.line == 5
    assert "first on line 4" in problem.message


def test_timestamps_stay_strings() -> None:
    manifest = parse_manifest(BASE + "description: 2024-01-01\n")
    assert manifest.description == "2024-01-01"


# ==================== field rules ====================


@pytest.mark.parametrize(
    ("lines", "path", "fragment", "line"),
    [
        ("id: My_Plugin\nname: x\nversion: 1.0.0\n", "id", "did you mean 'my-plugin'?", 1),
        ("id: ab\nname: x\nversion: 1.0.0\n", "id", "3 to 64 characters", 1),
        ("id: " + "a" * 65 + "\nname: x\nversion: 1.0.0\n", "id", "3 to 64 characters", 1),
        ("id: 1plugin\nname: x\nversion: 1.0.0\n", "id", "starting with a letter", 1),
        ("id: my--plugin\nname: x\nversion: 1.0.0\n", "id", "single hyphens", 1),
        ("id: my-plugin\nname: x\nversion: '1.0'\n", "version", "did you mean '1.0.0'?", 3),
        ("id: my-plugin\nname: x\nversion: 1.0\n", "version", "read it as a number", 3),
        ("id: my-plugin\nname: x\nversion: v1.2.3\n", "version", "did you mean '1.2.3'?", 3),
        ("id: my-plugin\nname: x\nversion: 01.2.3\n", "version", "SemVer 2.0", 3),
        ("id: my-plugin\nname: '  '\nversion: 1.0.0\n", "name", "must not be empty", 2),
        ("id: my-plugin\nversion: 1.0.0\n", "name", "is required", None),
    ],
)
def test_identity_rules(lines: str, path: str, fragment: str, line: int | None) -> None:
    problem = only_problem(lines)
    assert (problem.path, problem.line) == (path, line)
    assert fragment in problem.message


def test_semver_with_prerelease_and_build_is_accepted() -> None:
    assert parse_manifest(BASE.replace("1.0.0", "1.0.0-alpha.1+build.5")).version == (
        "1.0.0-alpha.1+build.5"
    )


@pytest.mark.parametrize(
    ("extra", "path", "fragments", "line"),
    [
        ("type: backnd\n", "type", ["did you mean 'backend'?", "hybrid, container"], 4),
        ("category: monitor\n", "category", ["did you mean 'monitoring'?", "analytics"], 4),
        ("category: 5\n", "category", ["must be a string", "monitoring"], 4),
        ("homepage: github.com/me\n", "homepage", ["http(s) URL"], 4),
        ("keywords: [ok, '']\n", "keywords[1]", ["1-50 characters"], 4),
        ("keywords: [a, b, a]\n", "keywords[2]", ["already listed at keywords[0]"], 4),
        ("descripton: x\n", "descripton", ["unknown field", "did you mean 'description'?"], 4),
        ("permission:\n  - devices:read\n", "permission", ["did you mean 'permissions'?"], 4),
        (
            "permissions:\n  - devices:read\n  - device:write\n",
            "permissions[1]",
            ["unknown permission 'device:write'", "did you mean 'devices:write'?", "alerts:read"],
            6,
        ),
        (
            "permissions:\n  - alerts:write\n  - alerts:write\n",
            "permissions[1]",
            ["already listed at permissions[0]"],
            6,
        ),
        ("runtime:\n  version: 3.11\n", "runtime.version", ["quote it"], 5),
        ("runtime:\n  version: '3.9'\n", "runtime.version", ["3.11 or newer"], 5),
        ("runtime:\n  type: node\n", "runtime.type", ["unknown runtime type 'node'"], 5),
        ("runtime:\n  entrypoint: ../x.py\n", "runtime.entrypoint", ["inside the plugin"], 5),
        ("runtime:\n  entry: main.py\n", "runtime.entry", ["did you mean 'entrypoint'?"], 5),
    ],
)
def test_metadata_rules(extra: str, path: str, fragments: list[str], line: int) -> None:
    problem = only_problem(BASE + extra)
    assert (problem.path, problem.line) == (path, line)
    for fragment in fragments:
        assert fragment in problem.message


@pytest.mark.parametrize(
    ("pricing", "path", "fragment", "line"),
    [
        ("  model: free\n  price: 5\n", "pricing.price", "must be 0 for a free plugin", 6),
        ("  model: one-time\n  price: 0\n", "pricing.price", "more than 0", 6),
        ("  model: subscription\n", "pricing.price", "more than 0", 4),
        ("  model: one-time\n  price: -3\n", "pricing.price", "must be >= 0", 6),
        ("  model: paid\n  price: 3\n", "pricing.model", "one-time, subscription", 5),
        ("  model: one-time\n  price: '3'\n", "pricing.price", "must be a number", 6),
        ("  model: one-time\n  price: 3\n  currency: usd\n", "pricing.currency", "'USD'", 7),
    ],
)
def test_pricing_rules(pricing: str, path: str, fragment: str, line: int) -> None:
    problem = only_problem(BASE + "pricing:\n" + pricing)
    assert (problem.path, problem.line) == (path, line)
    assert fragment in problem.message


def test_paid_pricing_is_accepted() -> None:
    manifest = parse_manifest(BASE + "pricing:\n  model: subscription\n  price: 9.99\n")
    assert manifest.pricing == Pricing(model="subscription", price=9.99, currency="USD")


# ==================== hooks and routes ====================


def hooks(*entries: str) -> str:
    return BASE + "hooks:\n" + "".join(entries)


def test_unknown_hook_event_suggests_the_catalog_name() -> None:
    problem = only_problem(
        hooks(
            "  - event: device.created\n    handler: a\n",
            "  - event: device.create\n    handler: b\n",
        )
    )
    assert (problem.path, problem.line) == ("hooks[1].event", 7)
    assert "did you mean 'device.created'?" in problem.message


def test_custom_events_must_use_the_plugins_own_namespace() -> None:
    manifest = parse_manifest(hooks("  - event: my-plugin.report_ready\n    handler: on_report\n"))
    assert manifest.hooks[0].event == "my-plugin.report_ready"
    problem = only_problem(hooks("  - event: other-plugin.ready\n    handler: on_ready\n"))
    assert problem.path == "hooks[0].event"
    assert "'my-plugin.<name>'" in problem.message


def test_filter_chain_may_be_declared_as_a_hook() -> None:
    manifest = parse_manifest(hooks("  - event: device.data.process\n    handler: enrich\n"))
    assert manifest.hooks[0].event == "device.data.process"


@pytest.mark.parametrize(
    ("entry", "path", "fragment"),
    [
        ("  - event: device.created\n    handler: 2fast\n", "hooks[0].handler", "Python function"),
        ("  - event: device.created\n    handler: class\n", "hooks[0].handler", "keyword"),
        ("  - event: device.created\n", "hooks[0].handler", "is required"),
        (
            "  - event: device.created\n    handler: a\n    priority: high\n",
            "hooks[0].priority",
            "must be an integer, got string 'high'",
        ),
        (
            "  - event: device.created\n    handler: a\n    priorty: 5\n",
            "hooks[0].priorty",
            "did you mean 'priority'?",
        ),
    ],
)
def test_hook_entry_rules(entry: str, path: str, fragment: str) -> None:
    problem = only_problem(hooks(entry))
    assert problem.path == path
    assert fragment in problem.message
    assert problem.line is not None
    assert problem.line >= 5


def test_duplicate_hook_is_refused() -> None:
    entry = "  - event: device.created\n    handler: on_created\n"
    problem = only_problem(hooks(entry, "  - event: device.updated\n    handler: x\n", entry))
    assert (problem.path, problem.line) == ("hooks[2]", 9)
    assert "repeats hooks[0]" in problem.message


def test_same_handler_on_two_events_is_fine() -> None:
    manifest = parse_manifest(
        hooks(
            "  - event: device.created\n    handler: sync\n    priority: 20\n",
            "  - event: device.updated\n    handler: sync\n",
        )
    )
    assert [hook.priority for hook in manifest.hooks] == [20, None]


def routes(*entries: str) -> str:
    return BASE + "routes:\n" + "".join(entries)


@pytest.mark.parametrize(
    ("entry", "path", "fragment"),
    [
        ("  - path: status\n    handler: a\n", "routes[0].path", "did you mean '/status'?"),
        ("  - path: /a b\n    handler: a\n", "routes[0].path", "no spaces"),
        ("  - path: /a?x=1\n    handler: a\n", "routes[0].path", "query parameters"),
        ("  - path: /d/{1id}\n    handler: a\n", "routes[0].path", "not a path parameter"),
        ("  - path: /d/{id}/{id}\n    handler: a\n", "routes[0].path", "appears twice"),
        ("  - path: /d/{id\n    handler: a\n", "routes[0].path", "unbalanced braces"),
        (
            "  - path: /a\n    methods: [GET, FETCH]\n    handler: a\n",
            "routes[0].methods[1]",
            "unknown HTTP method 'FETCH'",
        ),
        ("  - path: /a\n    methods: []\n    handler: a\n", "routes[0].methods", "at least one"),
        (
            "  - path: /a\n    methods: [GET, get]\n    handler: a\n",
            "routes[0].methods[1]",
            "twice",
        ),
        ("  - path: /a\n    handler: a-b\n", "routes[0].handler", "Python function"),
    ],
)
def test_route_entry_rules(entry: str, path: str, fragment: str) -> None:
    problem = only_problem(routes(entry))
    assert problem.path == path
    assert fragment in problem.message


def test_route_methods_are_normalised() -> None:
    manifest = parse_manifest(
        routes("  - path: /a/{id:int}\n    methods: [get, Post]\n    handler: a\n")
    )
    assert manifest.routes[0].methods == ("GET", "POST")
    single = parse_manifest(routes("  - path: /a\n    methods: DELETE\n    handler: a\n"))
    assert single.routes[0].methods == ("DELETE",)


def test_same_path_and_method_twice_is_refused_even_with_other_parameter_names() -> None:
    problem = only_problem(
        routes(
            "  - path: /devices/{id}\n    methods: [GET, POST]\n    handler: a\n",
            "  - path: /devices/{device_id}\n    methods: [POST]\n    handler: b\n",
        )
    )
    assert (problem.path, problem.line) == ("routes[1]", 8)
    assert "POST /devices/{device_id} is already declared by routes[0]" in problem.message


def test_same_path_with_other_method_is_fine() -> None:
    manifest = parse_manifest(
        routes(
            "  - path: /items\n    methods: [GET]\n    handler: a\n",
            "  - path: /items\n    methods: [POST]\n    handler: b\n",
        )
    )
    assert len(manifest.routes) == 2


# ==================== config_schema ====================


def schema(text: str) -> str:
    return BASE + "config_schema:\n  type: object\n  properties:\n" + text


def test_config_schema_must_be_valid_json_schema() -> None:
    problem = only_problem(schema("    threshold:\n      type: numbr\n"))
    assert (problem.path, problem.line) == ("config_schema.properties.threshold.type", 8)
    assert "did you mean 'number'?" in problem.message


def test_config_schema_other_meta_schema_errors() -> None:
    problem = only_problem(schema("    threshold:\n      maximum: high\n"))
    assert problem.path == "config_schema.properties.threshold.maximum"
    assert "JSON Schema rule" in problem.message


def test_config_schema_must_describe_an_object() -> None:
    problem = only_problem(BASE + "config_schema:\n  type: array\n")
    assert (problem.path, problem.line) == ("config_schema.type", 5)


def test_default_must_satisfy_its_own_property_schema() -> None:
    problem = only_problem(
        schema("    threshold:\n      type: number\n      maximum: 1\n      default: 1.5\n")
    )
    assert (problem.path, problem.line) == ("config_schema.properties.threshold.default", 10)
    assert "must be <= 1 (maximum)" in problem.message


def test_nested_default_is_checked_too() -> None:
    problem = only_problem(
        schema(
            "    limits:\n      type: object\n      properties:\n"
            "        cpu:\n          type: integer\n          default: lots\n"
        )
    )
    assert problem.path == "config_schema.properties.limits.properties.cpu.default"
    assert "must be of type integer, got string 'lots'" in problem.message
    assert problem.line == 12


def test_defaults_together_must_satisfy_the_schema() -> None:
    problem = only_problem(
        BASE + "config_schema:\n  type: object\n  maxProperties: 1\n  properties:\n"
        "    a:\n      default: 1\n    b:\n      default: 2\n"
    )
    assert problem.path == "config_schema"
    assert "maxProperties" in problem.message


def test_required_key_without_default_is_allowed() -> None:
    manifest = parse_manifest(
        schema("    api_key:\n      type: string\n") + "  required: [api_key]\n"
    )
    assert manifest.config_schema is not None


def test_misspelt_schema_keyword_is_reported() -> None:
    problem = only_problem(schema("    threshold:\n      type: number\n      defualt: 0.5\n"))
    assert problem.path == "config_schema.properties.threshold.defualt"
    assert "did you mean 'default'?" in problem.message


def test_custom_schema_annotations_are_kept() -> None:
    manifest = parse_manifest(
        schema("    threshold:\n      type: number\n      x-widget: slider\n")
    )
    assert manifest.config_schema is not None


# ==================== all problems at once ====================


def test_every_problem_is_listed_in_one_error_with_lines() -> None:
    text = (
        "id: My Plugin\n"  # 1
        "version: 1.0\n"  # 2
        "category: monitor\n"  # 3
        "pricing:\n"  # 4
        "  model: free\n"  # 5
        "  price: 10\n"  # 6
        "hooks:\n"  # 7
        "  - event: device.create\n"  # 8
        "    handler: on_created\n"  # 9
        "routes:\n"  # 10
        "  - path: /x\n"  # 11
        "    methods: [FETCH]\n"  # 12
        "    handler: x\n"  # 13
        "licence: MIT\n"  # 14
    )
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, source="my-plugin/plugin.yaml")
    found = {(problem.path, problem.line) for problem in caught.value.problems}
    assert found == {
        ("id", 1),
        ("name", None),
        ("version", 2),
        ("category", 3),
        ("pricing.price", 6),
        ("hooks[0].event", 8),
        ("routes[0].methods[0]", 12),
        ("licence", 14),
    }
    assert all(problem.file == "my-plugin/plugin.yaml" for problem in caught.value.problems)
    assert "my-plugin/plugin.yaml:14: licence: unknown field; did you mean 'license'?" in str(
        caught.value
    )


def test_from_dict_reports_paths_without_lines() -> None:
    with pytest.raises(ManifestError) as caught:
        Manifest.from_dict(
            {"id": "my-plugin", "name": "x", "version": "1", "hooks": [{"event": 3}]},
            source="Plugin(...)",
        )
    paths = {problem.path: problem for problem in caught.value.problems}
    assert set(paths) == {"version", "hooks[0].event", "hooks[0].handler"}
    assert paths["version"].line is None
    assert paths["version"].file == "Plugin(...)"
    assert "got integer 3" in paths["hooks[0].event"].message


def test_from_dict_refuses_non_mapping() -> None:
    with pytest.raises(ManifestError, match="must be a mapping"):
        Manifest.from_dict(["id"])  # type: ignore[arg-type]


def test_plugin_metadata_from_dict_validates() -> None:
    metadata = PluginMetadata.from_dict({"id": "my-plugin", "name": "x", "version": "2.0.0"})
    assert metadata.version == "2.0.0"
    with pytest.raises(ManifestError, match="hooks"):
        PluginMetadata.from_dict({"id": "my-plugin", "name": "x", "version": "2.0.0", "hooks": []})


def test_direct_construction_still_enforces_cross_field_rules() -> None:
    with pytest.raises(pydantic.ValidationError, match="repeats hooks"):
        Manifest(
            id="my-plugin",
            name="x",
            version="1.0.0",
            hooks=(
                HookEntry(event="device.created", handler="a"),
                HookEntry(event="device.created", handler="a"),
            ),
        )
    with pytest.raises(pydantic.ValidationError, match="must be 0 for a free plugin"):
        Pricing(model="free", price=3)


# ==================== permissions catalog ====================


def test_required_permissions_are_in_the_catalog() -> None:
    assert set(REQUIRED_PERMISSION.values()) <= set(ALL_PERMISSIONS)
    assert {permission.split(":")[0] for permission in ALL_PERMISSIONS} == set(RESOURCES)
    assert REQUIRED_PERMISSION[("devices", "list")] == "devices:read"
    assert REQUIRED_PERMISSION[("devices", "delete")] == "devices:write"
    assert REQUIRED_PERMISSION[("alerts", "acknowledge")] == "alerts:write"
    assert REQUIRED_PERMISSION[("alerts", "resolve")] == "alerts:write"
    assert REQUIRED_PERMISSION[("users", "get")] == "users:read"
    assert REQUIRED_PERMISSION[("organizations", "list")] == "organizations:read"
    assert REQUIRED_PERMISSION[("webhooks", "create")] == "webhooks:write"


# ==================== YAML with lines ====================


def test_line_map_falls_back_to_the_closest_ancestor() -> None:
    _, lines = load_yaml_with_lines("a:\n  b:\n    - x\n    - y: 1\n")
    assert lines.line_of(("a", "b", 1, "y")) == 4
    assert lines.line_of(("a", "b", 1, "missing")) == 4
    assert lines.line_of(("a", "nope")) == 1
    assert lines.line_of(("zzz",)) is None


def test_merge_keys_load_like_safe_load() -> None:
    text = "base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  x: 3\n"
    data, lines = load_yaml_with_lines(text)
    assert data == yaml.safe_load(text)
    assert lines.line_of(("other", "x")) == 6
    assert lines.duplicates == ()


def test_syntax_problem_points_at_the_parser_position() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        load_yaml_with_lines("a: 1\n  b: 2\n")
    problem = syntax_problem(caught.value, "x.yaml")
    assert (problem.file, problem.line) == ("x.yaml", 2)


def test_format_path() -> None:
    assert format_path(("hooks", 1, "event")) == "hooks[1].event"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""


def test_a_billion_laughs_manifest_is_refused_quickly() -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(9):
        prev, name = ("a" if n == 0 else f"l{n - 1}"), f"l{n}"
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    text = "id: bomb-plugin\nname: Bomb\nversion: 1.0.0\nx:\n" + "\n".join(
        "  " + line for line in levels
    )
    with pytest.raises(ManifestError, match="expands to more than"):
        parse_manifest(text)


def test_a_deeply_nested_manifest_is_a_yaml_error_not_a_crash() -> None:
    text = "id: deep-plugin\nname: Deep\nversion: 1.0.0\nx: " + "[" * 50_000 + "]" * 50_000
    with pytest.raises(ManifestError, match="nested too deeply"):
        parse_manifest(text)


def test_a_route_is_private_unless_it_says_public_true() -> None:
    routes = (
        "routes:\n  - path: /a\n    handler: a\n  - path: /b\n    handler: b\n    public: true\n"
    )
    manifest = parse_manifest(BASE + routes)
    assert [route.public for route in manifest.routes] == [False, True]
    problem = only_problem(BASE + "routes:\n  - path: /a\n    handler: a\n    public: 'yes'\n")
    assert problem.path == "routes[0].public"
    assert problem.line == 7
