"""Hostile configuration: any schema, key or value gives a value or a documented error.

The documented errors (docs/configuration.md): ``ConfigError`` for a schema
that is not usable, a key that cannot be set and a value that breaks the
schema; ``TypeError`` naming the key for a value that is not JSON. Nothing
else escapes, and a refused ``set`` changes nothing. Over HTTP, ``PUT
/api/v1/plugins/{id}/config`` answers 2xx or 4xx in the REST error shape.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_center_sdk.config import Config
from ops_center_sdk.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_plugins"))

from plugin_kit import error_of, running_host, write_recorder

#: Examples each property runs (the report quotes these).
SCHEMA_EXAMPLES = 200
SET_EXAMPLES = 200
HTTP_EXAMPLES = 150

HUGE_INT = 10**5000  # more digits than Python turns into text by default (4300)


def deep_list(depth: int) -> Any:
    """``[[[...]]]``, ``depth`` lists deep."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


DEEP_LIST = deep_list(3000)
# Built by a function: Hypothesis shows a strategy's arguments, and neither repr() works.
huge_ints = st.builds(lambda sign: sign * HUGE_INT, st.sampled_from([1, -1]))
deep_lists = st.builds(deep_list, st.sampled_from([65, 500, 3000]))

key_text = st.lists(
    st.sampled_from([*"ab.0²\u0661_ -$#\x00\ud800", "threshold", "smtp", "port"]), max_size=5
).map("".join)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**4000])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(key_text, inner, max_size=3),
    max_leaves=10,
) | st.builds(deep_list, st.integers(0, 50))
not_json = (
    st.sampled_from(
        [math.nan, math.inf, {1: "x"}, {"a": {b"k": 1}}, b"bytes", {1, 2}, object(), [math.nan]]
    )
    | huge_ints
    | deep_lists
)

#: Pieces of JSON Schema, right and wrong: what a hostile plugin.yaml may hold.
schema_keywords: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["object", "string", "number", "integer", "array", "nope", 5]),
    "minimum": st.integers() | st.floats() | huge_ints | st.text(max_size=3),
    "maximum": st.integers() | st.floats() | huge_ints,
    "exclusiveMinimum": st.integers() | st.floats(),
    "multipleOf": st.sampled_from([0, -1, 1e-308, 1e308, 0.1, 3, 10**300, "x"]),
    "minLength": st.integers(-3, 5) | huge_ints,
    "maxItems": st.integers(-3, 5),
    "pattern": st.text(alphabet=st.sampled_from(list("a([])*+?{}\\^$|.1")), max_size=8),
    "format": st.sampled_from(["email", "regex", "ipv4", "date", "uuid", "nope", 1]),
    "enum": st.lists(leaves, max_size=3) | st.just([]) | st.just("x"),
    "const": leaves,
    "required": st.lists(key_text, max_size=3) | st.just("a"),
    "additionalProperties": st.booleans() | st.just({"type": "string"}),
    "$ref": st.sampled_from(["#", "#/$defs/a", "#/$defs/missing", "#/properties", "x.json", 5]),
    "$schema": st.sampled_from(
        ["https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-04/schema#"]
    )
    | st.text(max_size=4)
    | st.integers(),
    "defualt": leaves,
}


def schemas(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """A schema mapping: some keywords, a default, and (nested) properties."""
    if depth == 0:
        return st.fixed_dictionaries({}, optional=schema_keywords)
    inner = schemas(depth - 1)
    return st.fixed_dictionaries(
        {},
        optional={
            **schema_keywords,
            "default": json_values | not_json,
            "properties": st.dictionaries(key_text, inner | leaves, max_size=3),
            "$defs": st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
            "items": inner,
            "patternProperties": st.dictionaries(schema_keywords["pattern"], inner, max_size=2),
            "anyOf": st.lists(inner, max_size=2),
            "not": inner,
        },
    )


def _no_surprise(error: BaseException, value: Any = None, key: str = "") -> None:
    """Fail unless ``error`` is one the docs name for this call."""
    if isinstance(error, ConfigError):
        assert error.problems, "a ConfigError lists its problems"
        assert str(error)
        return
    if isinstance(error, TypeError) and value is not None:
        assert key in str(error) or "config value" in str(error), error
        return
    raise AssertionError(f"undocumented {type(error).__name__}: {error}") from error


def _try_set(config: Config, key: str, value: Any, *, json_value: bool) -> bool:
    """Set and check the promises; True when the set was accepted."""
    before = config.all()
    try:
        config.set(key, value)
    except (ConfigError, TypeError) as error:
        _no_surprise(error, None if json_value else value, key)
        assert config.all() == before, f"a refused set({key!r}) changed the config"
        return False
    except Exception as error:
        _no_surprise(error)
    return True


@settings(
    max_examples=SCHEMA_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schemas(), st.lists(st.tuples(key_text, json_values), max_size=4), key_text)
def test_any_schema_and_values_give_a_config_or_a_config_error(
    schema: dict[str, Any], sets: list[tuple[str, Any]], read: str
) -> None:
    try:
        config = Config(schema=schema)
    except Exception as error:
        _no_surprise(error)
        return
    for key, value in sets:
        _try_set(config, key, value, json_value=True)
    try:
        config.set_overrides({read: sets[0][1]} if sets else {})
    except Exception as error:
        _no_surprise(error)
    try:
        config.check_complete()
    except Exception as error:
        _no_surprise(error)
    config.get(read, default="absent")


@settings(max_examples=SET_EXAMPLES, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(
            key_text, json_values.map(lambda v: (v, True)) | not_json.map(lambda v: (v, False))
        ),
        min_size=1,
        max_size=6,
    ),
    key_text,
)
def test_any_key_and_value_set_or_refused_and_nothing_stored_is_lost(
    steps: list[tuple[str, tuple[Any, bool]]], read: str
) -> None:
    config = Config(
        schema={
            "type": "object",
            "properties": {
                "threshold": {"type": "number", "maximum": 1, "default": 0.5},
                "smtp": {"type": "object", "properties": {"port": {"type": "integer"}}},
            },
        }
    )
    for key, (value, is_json) in steps:
        before = config.all()
        accepted = _try_set(config, key, value, json_value=is_json)
        if accepted:
            assert is_json, f"set({key!r}) accepted a value that is not JSON"
            # What was there before is still there unless this key replaced it.
            for name, old in before.items():
                if name != key and not key.startswith(f"{name}.") and name in config.all():
                    merged = config.all()[name]
                    if not isinstance(old, dict):
                        assert merged == old
        config.get(read)
        config.get(key, default=None)


GET_EXAMPLES = 200


@settings(max_examples=GET_EXAMPLES, derandomize=True, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "a.b", ""]), json_values, max_size=3),
    st.lists(st.sampled_from(["a", "b", "0", "1", "²", "\u0661", "", "a.b", "-1"]), max_size=4).map(
        ".".join
    ),
)
def test_get_of_any_key_is_the_value_or_the_default(values: dict[str, Any], key: str) -> None:
    config = Config(overrides=values)
    missing = object()
    found = config.get(key, default=missing)
    if found is missing:
        return
    # What get found is really there: walk the same path by hand.
    node: Any = config.all()
    if key in node:
        assert found == node[key]
        return
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert found == node


def test_setting_the_empty_key_is_a_config_error_and_changes_nothing() -> None:
    config = Config(overrides={"kept": 1})
    config.set("a", {"b": 2})
    for bad in ("", ".", "a.", ".a", "a..b"):
        before = copy.deepcopy(config.all())
        with pytest.raises(ConfigError) as caught:
            config.set(bad, 1)
        assert caught.value.problems
        assert config.all() == before


def test_a_huge_integer_is_refused_naming_the_key_or_described_without_failing() -> None:
    config = Config(
        schema={"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}}
    )
    with pytest.raises((ConfigError, TypeError)) as caught:
        config.set("n", HUGE_INT)
    assert "n" in str(caught.value)
    assert config.all() == {}


def test_a_value_nested_deeper_than_python_recurses_is_refused_naming_the_key() -> None:
    config = Config()
    with pytest.raises((ConfigError, TypeError)) as caught:
        config.set("deep", DEEP_LIST)
    assert "deep" in str(caught.value)
    assert config.all() == {}


# ==================== over HTTP ====================

http_values = json_values | huge_ints | deep_lists
http_bodies = (
    st.dictionaries(key_text | st.just("threshold"), http_values, max_size=4)
    | http_values
    | st.fixed_dictionaries({"threshold": http_values})
)


def test_put_config_with_any_json_answers_2xx_or_a_4xx_error(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    host_cm = running_host(tmp_path / "data")
    host = loop.run_until_complete(host_cm.__aenter__())
    statuses: dict[int, int] = {}
    try:
        installed = loop.run_until_complete(host.install(write_recorder(tmp_path / "src")))
        assert installed.status_code == 201, installed.text

        @settings(
            max_examples=HTTP_EXAMPLES,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(http_bodies)
        def put(body: Any) -> None:
            limit = sys.get_int_max_str_digits()
            sys.set_int_max_str_digits(0)  # a client in another language writes any integer
            try:
                content = json.dumps(body).encode()
            except RecursionError:
                content = b"[" * 100_000
            finally:
                sys.set_int_max_str_digits(limit)
            response = loop.run_until_complete(
                host.http.put(
                    "/api/v1/plugins/recorder/config",
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                error_of(response)
            else:
                threshold = response.json()["config"]["threshold"]
                assert isinstance(threshold, int | float)
                assert 0 <= threshold <= 10

        put()
        health = loop.run_until_complete(host.http.get("/api/v1/plugins/recorder"))
        assert health.status_code == 200
    finally:
        loop.run_until_complete(host_cm.__aexit__(None, None, None))
        loop.close()
    assert sum(statuses.values()) >= HTTP_EXAMPLES // 2


async def test_a_lone_surrogate_in_a_body_is_a_400_naming_it(tmp_path: Path) -> None:
    async with running_host(tmp_path / "data") as host:
        await host.install(write_recorder(tmp_path / "src"))
        response = await host.http.put(
            "/api/v1/plugins/recorder/config",
            content=b'{"threshold": 1, "\\ud800x": 2}',
            headers={"Content-Type": "application/json"},
        )
        paired = await host.http.put(
            "/api/v1/plugins/recorder/config",
            content=b'{"threshold": 1, "\\ud83d\\ude00": 2}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "lone surrogate (\\ud800)" in error["message"]
    assert "at character 18" in error["message"]
    # A surrogate pair is a real character: checked against the schema, not refused as JSON.
    assert paired.status_code == 422
    assert error_of(paired)["code"] == "invalid_config"
