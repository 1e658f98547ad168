"""plugin.config: layers, validation with key paths and lines, atomic save, safe reload."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops_center_sdk.config import Config, schema_defaults
from ops_center_sdk.errors import ConfigError, Problem
from ops_center_sdk.manifest import load_manifest

FIXTURES = Path(__file__).parent / "fixtures"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8},
        "enabled": {"type": "boolean", "default": True},
        "thresholds": {
            "type": "object",
            "properties": {
                "cpu": {"type": "integer", "maximum": 100, "default": 90},
                "memory": {"type": "integer", "default": 80},
            },
        },
        "targets": {"type": "array", "items": {"type": "string"}},
        "mode": {"enum": ["fast", "slow"], "default": "fast"},
        "api_key": {"type": "string", "minLength": 8},
    },
    "required": ["api_key"],
}

DEFAULTS = {
    "threshold": 0.8,
    "enabled": True,
    "thresholds": {"cpu": 90, "memory": 80},
    "mode": "fast",
}


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def problems_of(error: pytest.ExceptionInfo[ConfigError]) -> dict[str, Problem]:
    return {problem.path: problem for problem in error.value.problems}


# ==================== layers ====================


def test_defaults_only_when_there_is_no_file(tmp_path: Path) -> None:
    config = Config(schema=SCHEMA, path=tmp_path / "config.yaml")
    assert config.all() == DEFAULTS
    assert config.get("threshold") == 0.8
    assert config.get("thresholds.cpu") == 90
    assert config.get("api_key") is None
    assert config.get("missing", default=3) == 3
    assert config.get("thresholds.nope", default="x") == "x"


def test_schema_defaults_recurse_into_nested_objects() -> None:
    assert schema_defaults(SCHEMA) == DEFAULTS


def test_precedence_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\nthresholds:\n  cpu: 70\nmode: slow\n")
    config = Config(
        schema=SCHEMA, path=path, overrides={"mode": "fast", "thresholds": {"memory": 60}}
    )
    assert config.all() == {
        "threshold": 0.5,  # file beats default
        "enabled": True,  # default
        "thresholds": {"cpu": 70, "memory": 60},  # nested mappings merge key by key
        "mode": "fast",  # host beats file
    }


def test_lists_are_replaced_not_merged(tmp_path: Path) -> None:
    path = config_file(tmp_path, "targets: [a, b]\n")
    config = Config(schema=SCHEMA, path=path, overrides={"targets": ["c"]})
    assert config.get("targets") == ["c"]


def test_get_and_all_return_copies() -> None:
    config = Config(schema=SCHEMA)
    config.set("targets", ["a"])
    config.get("targets").append("sneaky")
    config.all()["thresholds"]["cpu"] = 1000
    assert config.get("targets") == ["a"]
    assert config.get("thresholds.cpu") == 90


def test_from_manifest_uses_the_schema_and_config_yaml(tmp_path: Path) -> None:
    manifest = load_manifest(FIXTURES / "spec-plugin.yaml")
    (tmp_path / "config.yaml").write_text("threshold: 0.95\n")
    config = Config.from_manifest(manifest, tmp_path)
    assert config.path == tmp_path / "config.yaml"
    assert config.all() == {"threshold": 0.95, "enabled": True}
    with pytest.raises(ConfigError, match="must be of type boolean"):
        config.set("enabled", "yes")


def test_from_manifest_without_folder_keeps_values_in_memory() -> None:
    manifest = load_manifest(FIXTURES / "spec-plugin.yaml")
    config = Config.from_manifest(manifest, None)
    assert config.path is None
    assert config.get("threshold", default=0.1) == 0.8


# ==================== invalid config.yaml ====================


def test_invalid_file_lists_each_violation_with_path_rule_and_line(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "threshold: high\n"  # 1
        "thresholds:\n"  # 2
        "  cpu: 150\n"  # 3
        "targets: [a, b, 3]\n"  # 4
        "treshold: 0.2\n",  # 5
    )
    with pytest.raises(ConfigError) as caught:
        Config(schema=SCHEMA, path=path)
    problems = problems_of(caught)
    assert set(problems) == {"threshold", "thresholds.cpu", "targets[2]", "treshold"}
    assert problems["threshold"].message == "must be of type number, got string 'high'"
    assert problems["thresholds.cpu"].message == "must be <= 100 (maximum), got 150"
    assert problems["targets[2]"].message == "must be of type string, got integer 3"
    assert "did you mean 'threshold'?" in problems["treshold"].message
    assert "additionalProperties" in problems["treshold"].message
    assert [
        problems[key].line for key in ("threshold", "thresholds.cpu", "targets[2]", "treshold")
    ] == [1, 3, 4, 5]
    assert all(problem.file == str(path) for problem in problems.values())
    assert f"{path}:3: thresholds.cpu: must be <= 100 (maximum)" in str(caught.value)


def test_enum_violation_suggests_the_closest_value(tmp_path: Path) -> None:
    path = config_file(tmp_path, "mode: fsat\n")
    with pytest.raises(
        ConfigError, match=r"must be one of 'fast', 'slow' \(enum\).*did you mean 'fast'"
    ):
        Config(schema=SCHEMA, path=path)


def test_unknown_keys_are_kept_when_the_schema_allows_them(tmp_path: Path) -> None:
    open_schema = {**SCHEMA, "additionalProperties": True}
    path = config_file(tmp_path, "colour: blue\n")
    assert Config(schema=open_schema, path=path).get("colour") == "blue"


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("threshold: [0.5\nenabled: true\n", "invalid YAML", 2),
        ("- a\n- b\n", "must be a mapping of settings", 1),
        ("threshold: 0.5\nthreshold: 0.6\n", "written twice", 2),
        ("data: !!binary aGVsbG8=\n", "not a JSON value", 1),
        ("x: .nan\n", "not a finite number", 1),
    ],
)
def test_broken_file_is_a_config_error_with_file_and_line(
    tmp_path: Path, text: str, fragment: str, line: int
) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Config(path=path)
    (problem,) = caught.value.problems
    assert fragment in problem.message
    assert (problem.file, problem.line) == (str(path), line)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = config_file(tmp_path, "# nothing set yet\n")
    assert Config(schema=SCHEMA, path=path).all() == DEFAULTS


def test_dates_stay_strings(tmp_path: Path) -> None:
    path = config_file(tmp_path, "since: 2024-01-01\n")
    schema = {"type": "object", "properties": {"since": {"type": "string", "format": "date"}}}
    assert Config(schema=schema, path=path).get("since") == "2024-01-01"


def test_invalid_schema_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Config(schema={"type": "object", "properties": {"a": {"type": "numbr"}}})
    (problem,) = caught.value.problems
    assert problem.path == "config_schema.properties.a.type"
    assert "did you mean 'number'?" in problem.message


def test_schema_default_breaking_its_rule_is_refused() -> None:
    with pytest.raises(
        ConfigError,
        match=r"properties.a.default: default integer 5 breaks its own schema: must be <= 1",
    ):
        Config(schema={"type": "object", "properties": {"a": {"maximum": 1, "default": 5}}})


# ==================== set ====================


def test_set_validates_and_leaves_everything_untouched_on_failure(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path)
    before = config.all()
    with pytest.raises(ConfigError) as caught:
        config.set("threshold", 1.5)
    (problem,) = caught.value.problems
    assert problem.path == "threshold"
    assert problem.message == "must be <= 1 (maximum), got 1.5"
    assert problem.line is None  # the bad value is the one just given, not the file's
    assert config.all() == before
    with pytest.raises(ConfigError, match="must be of type number, got string 'high'"):
        config.set("threshold", "high")
    assert config.all() == before


def test_set_nested_key_with_dots() -> None:
    config = Config(schema=SCHEMA)
    config.set("thresholds.cpu", 95)
    assert config.get("thresholds") == {"cpu": 95, "memory": 80}
    with pytest.raises(ConfigError) as caught:
        config.set("thresholds.cpu", 101)
    assert problems_of(caught)["thresholds.cpu"].message == "must be <= 100 (maximum), got 101"
    assert config.get("thresholds.cpu") == 95


def test_set_unknown_key_is_refused_by_a_closed_schema() -> None:
    config = Config(schema=SCHEMA)
    with pytest.raises(ConfigError, match="did you mean 'enabled'"):
        config.set("enabeld", False)
    assert "enabeld" not in config.all()


def test_set_inside_a_non_mapping_is_refused() -> None:
    config = Config()
    config.set("limit", 5)
    with pytest.raises(ConfigError, match="integer 5, not a mapping"):
        config.set("limit.max", 3)
    assert config.all() == {"limit": 5}


def test_without_schema_any_json_value_may_be_set() -> None:
    config = Config()
    config.set("anything", {"nested": [1, 2.5, None, True, "x"]})
    config.set("tuple", (1, 2))
    assert config.all() == {"anything": {"nested": [1, 2.5, None, True, "x"]}, "tuple": [1, 2]}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (object(), "'key'"),
        ({"inner": {1, 2}}, "'key.inner'"),
        ([1, float("inf")], "'key[1]'"),
        ({1: "x"}, "'key.1'"),
    ],
)
def test_non_json_values_are_refused_with_type_error(value: Any, where: str) -> None:
    config = Config()
    with pytest.raises(TypeError, match=re.escape(where)):
        config.set("key", value)
    assert config.all() == {}


def test_set_keeps_a_copy_of_the_value() -> None:
    config = Config(schema=SCHEMA)
    targets: list[Any] = ["a"]
    config.set("targets", targets)
    targets.append(42)  # would break the schema if it reached the config
    assert config.get("targets") == ["a"]


def test_overrides_win_over_set_values_and_the_sdk_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(schema=SCHEMA, overrides={"threshold": 0.3})
    with caplog.at_level(logging.WARNING, logger="ops_center_sdk.config"):
        config.set("threshold", 0.9)
    assert config.get("threshold") == 0.3
    assert [record.name for record in caplog.records] == ["ops_center_sdk.config"]


def test_set_overrides_is_validated() -> None:
    config = Config(schema=SCHEMA)
    with pytest.raises(ConfigError) as caught:
        config.set_overrides({"threshold": 3})
    (problem,) = caught.value.problems
    assert (problem.path, problem.file) == ("threshold", "host overrides")
    assert config.get("threshold") == 0.8
    config.set_overrides({"threshold": 0.1})
    assert config.get("threshold") == 0.1
    with pytest.raises(TypeError, match="mapping"):
        config.set_overrides(["threshold"])  # type: ignore[arg-type]


def test_required_keys_are_reported_by_check_complete() -> None:
    config = Config(schema=SCHEMA)
    with pytest.raises(ConfigError) as caught:
        config.check_complete()
    assert problems_of(caught)["api_key"].message == "is required and has no value (required)"
    config.set("api_key", "secret-123")
    config.check_complete()


# ==================== save ====================


async def test_save_writes_the_file_layer_and_set_values(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path, overrides={"mode": "slow"})
    config.set("thresholds.cpu", 75)
    await config.save()
    # Defaults and host overrides are not copied into the file.
    assert yaml.safe_load(path.read_text()) == {"threshold": 0.5, "thresholds": {"cpu": 75}}
    again = Config(schema=SCHEMA, path=path, overrides={"mode": "slow"})
    assert again.all() == config.all()


async def test_save_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config = Config(schema=SCHEMA, path=path)
    config.set("enabled", False)
    await config.save()
    assert Config(schema=SCHEMA, path=path).get("enabled") is False
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]


async def test_save_keeps_the_files_permissions(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    path.chmod(0o640)
    config = Config(schema=SCHEMA, path=path)
    config.set("threshold", 0.6)
    await config.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("failing", ["replace", "fsync"])
async def test_failed_save_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path)
    config.set("threshold", 0.7)

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        await config.save()
    monkeypatch.undo()

    assert path.read_text() == "threshold: 0.5\n"
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]
    assert config.get("threshold") == 0.7  # the change is still there to save again
    await config.save()
    assert yaml.safe_load(path.read_text()) == {"threshold": 0.7}


async def test_concurrent_saves_leave_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config = Config(schema=SCHEMA, path=path)
    config.set("threshold", 0.1)
    first = asyncio.ensure_future(config.save())
    config.set("threshold", 0.2)
    await asyncio.gather(first, config.save())
    assert yaml.safe_load(path.read_text()) == {"threshold": 0.2}


async def test_save_and_reload_without_a_path_do_nothing() -> None:
    config = Config(schema=SCHEMA)
    config.set("threshold", 0.2)
    await config.save()
    await config.reload()
    assert config.get("threshold") == 0.2


# ==================== reload ====================


async def test_reload_reads_the_file_again_and_drops_unsaved_changes(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path)
    config.set("enabled", False)
    path.write_text("threshold: 0.25\nmode: slow\n")
    await config.reload()
    assert config.all() == {**DEFAULTS, "threshold": 0.25, "mode": "slow"}


async def test_reload_of_an_invalid_file_keeps_the_previous_values(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path)
    before = config.all()

    path.write_text("threshold: 0.5\nthresholds:\n  cpu: 500\n")
    with pytest.raises(ConfigError) as caught:
        await config.reload()
    (problem,) = caught.value.problems
    assert (problem.path, problem.line, problem.file) == ("thresholds.cpu", 3, str(path))
    assert config.all() == before

    path.write_text("threshold: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        await config.reload()
    assert config.all() == before


async def test_reload_after_the_file_is_removed_falls_back_to_defaults(tmp_path: Path) -> None:
    path = config_file(tmp_path, "threshold: 0.5\n")
    config = Config(schema=SCHEMA, path=path)
    path.unlink()
    await config.reload()
    assert config.all() == DEFAULTS


async def test_errors_after_save_point_at_the_saved_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config = Config(schema=SCHEMA, path=path)
    config.set("enabled", False)
    config.set("thresholds.cpu", 10)
    await config.save()
    with pytest.raises(ConfigError) as caught:
        config.set_overrides({"thresholds": {"memory": "lots"}})
    assert caught.value.problems[0].file == "host overrides"


def test_keys_that_are_not_strings_are_refused_naming_them() -> None:
    config = Config(overrides={"threshold": 0.5})
    with pytest.raises(TypeError, match="a config key must be a string, got int 5"):
        config.get(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a config key must be a string, got int 5"):
        config.set(5, 1)  # type: ignore[arg-type]
    assert config.all() == {"threshold": 0.5}


@pytest.mark.parametrize(
    ("key", "where", "what"),
    [
        ("", "", "a config key must be a non-empty string, got ''"),
        ("smtp..port", "smtp..port", "has an empty part between dots"),
        ("smtp.", "smtp.", "has an empty part between dots"),
    ],
)
def test_empty_keys_are_config_errors_naming_the_key(key: str, where: str, what: str) -> None:
    config = Config(overrides={"threshold": 0.5})
    with pytest.raises(ConfigError) as caught:
        config.set(key, 1)
    assert caught.value.summary == f"cannot set {key!r}"
    assert caught.value.problems[0].path == where
    assert what in caught.value.problems[0].message
    assert config.all() == {"threshold": 0.5}
