"""Plugin configuration: ``plugin.config``, validated against the manifest's ``config_schema``.

Three layers, lowest first: the ``default`` of each property in
``config_schema``, ``config.yaml`` beside ``plugin.yaml``, and the values the
host sets for the installation. Every load and every :meth:`Config.set` is
checked against the schema (JSON Schema, draft 2020-12 unless ``$schema``
says otherwise); the error names the key path and the rule broken.

A ``required`` key with no value is not an error while loading or setting: a
plugin is often configured in steps (the host fills in an API key after
installation). :meth:`Config.check_complete` reports such keys, and the host
calls it before enabling the plugin.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import functools
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ConfigError, Problem
from .schema_safety import (
    known_drafts,
    local_only_registry,
    schema_dialect_problems,
    schema_safety_problems,
)
from .yaml_source import (
    EMPTY_LINE_MAP,
    KeyPath,
    LineMap,
    describe_value,
    duplicate_key_problems,
    format_path,
    load_yaml_with_lines,
    non_json_values,
    syntax_problem,
)

if TYPE_CHECKING:
    from .manifest import Manifest

Loc = KeyPath
Violation = tuple[Loc, str]

CONFIG_FILE = "config.yaml"
_OVERRIDES_LABEL = "host overrides"
sdk_log = logging.getLogger("ops_center_sdk.config")


class Config:
    """A plugin's settings: schema defaults, then ``config.yaml``, then host overrides.

    >>> config = Config(schema={"type": "object", "properties": {
    ...     "threshold": {"type": "number", "maximum": 1, "default": 0.8}}})
    >>> config.get("threshold")
    0.8
    >>> config.set("threshold", 0.9)
    >>> config.all()
    {'threshold': 0.9}

    ``path`` is the ``config.yaml`` to read (a missing file is fine: defaults
    only); values given to :meth:`set` go into that file's layer, so
    :meth:`save` writes them. Without a path, :meth:`save` and :meth:`reload`
    do nothing and the values live in memory. Without a schema any key may be
    set, but every value must be a JSON value.
    """

    def __init__(
        self,
        *,
        schema: Mapping[str, Any] | None = None,
        path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        source_name: str = "config",
        label: str | None = None,
    ) -> None:
        self._schema: dict[str, Any] | None = None
        self._validator: Any = None
        self._defaults: dict[str, Any] = {}
        if schema is not None:
            problems = [
                Problem(format_path(("config_schema", *loc)), message, file=source_name)
                for loc, message in config_schema_problems(schema)
            ]
            if problems:
                raise ConfigError("config_schema is not usable", problems)
            self._schema = copy.deepcopy(dict(schema))
            self._validator = make_validator(self._schema)
            self._defaults = schema_defaults(self._schema)
        self._path = Path(path) if path is not None else None
        # How errors name where the values came from: the file, unless told otherwise.
        self._label = label or (str(self._path) if self._path is not None else source_name)
        self._file_values: dict[str, Any] = {}
        self._file_lines: LineMap = EMPTY_LINE_MAP
        self._overrides: dict[str, Any] = {}
        # Saves are numbered so that, when two overlap, the older text never lands last.
        # A threading lock, not an asyncio one: a plugin's config may outlive an event loop.
        self._saves_started = 0
        self._save_written = 0
        self._write_lock = threading.Lock()
        if self._path is not None:
            self._file_values, self._file_lines = self._read_file()
        if overrides is not None:
            self._overrides = _json_mapping(overrides)
        self._merged = self._check(self._file_values, self._overrides, self._file_lines)

    @classmethod
    def from_manifest(cls, manifest: Manifest, plugin_root: str | Path | None) -> Config:
        """The config of the plugin in ``plugin_root``: its config.yaml, the manifest's schema.

        With ``plugin_root=None`` (a plugin with no folder) the values live in memory.
        """
        path = Path(plugin_root) / CONFIG_FILE if plugin_root is not None else None
        return cls(schema=manifest.config_schema, path=path, source_name=CONFIG_FILE)

    # ==================== reading ====================

    @property
    def schema(self) -> dict[str, Any] | None:
        """A copy of the JSON Schema the values are checked against (``None``: anything goes)."""
        return copy.deepcopy(self._schema)

    @property
    def path(self) -> Path | None:
        """The ``config.yaml`` that :meth:`save` writes and :meth:`reload` reads."""
        return self._path

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (``"a.b"`` reaches into nested mappings), or ``default``.

        >>> Config(overrides={"smtp": {"port": 25}}).get("smtp.port")
        25
        """
        if not isinstance(key, str):
            raise TypeError(f"a config key must be a string, got {type(key).__name__} {key!r}")
        if key in self._merged:
            return copy.deepcopy(self._merged[key])
        node: Any = self._merged
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and _is_index(part) and int(part) < len(node):
                node = node[int(part)]
            else:
                return default
        return copy.deepcopy(node)

    def all(self) -> dict[str, Any]:
        """A deep copy of the merged configuration."""
        return copy.deepcopy(self._merged)

    def __repr__(self) -> str:
        return f"Config(path={self._label!r}, keys={sorted(self._merged)!r})"

    # ==================== changing ====================

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` (dotted for nested mappings) after checking the whole result.

        The value is recorded in the file layer, so :meth:`save` persists it.
        If the result breaks ``config_schema`` a :class:`ConfigError` is
        raised and nothing changes; a value that is not a JSON value raises
        ``TypeError`` naming the key.
        """
        loc = self._key_path(key)
        plain = _json_copy(value, loc)
        self._check_containers(key, loc)
        candidate = copy.deepcopy(self._file_values)
        node = candidate
        for part in loc[:-1]:
            child = node.get(str(part))
            if not isinstance(child, dict):
                child = node[str(part)] = {}
            node = child
        node[str(loc[-1])] = plain
        self._merged = self._check(
            candidate, self._overrides, self._file_lines, changed=loc, summary=f"cannot set {key!r}"
        )
        self._file_values = candidate
        if _has_path(self._overrides, loc):
            sdk_log.warning(
                "config %r is set by the host for this installation; the value set is kept "
                "in %s but the host's value wins",
                key,
                self._label,
            )

    def set_overrides(self, overrides: Mapping[str, Any]) -> None:
        """Replace the host-set values (highest precedence), after checking the result."""
        fresh = _json_mapping(overrides)
        self._merged = self._check(
            self._file_values,
            fresh,
            self._file_lines,
            summary="the host's configuration values break config_schema",
        )
        self._overrides = fresh

    def check_complete(self) -> None:
        """Raise :class:`ConfigError` listing each ``required`` key that has no value yet."""
        if self._validator is None:
            return
        missing = [
            Problem(format_path(loc), message)
            for loc, message in schema_violations(self._validator, self._merged, only_required=True)
        ]
        if missing:
            raise ConfigError(f"{self._label}: required settings have no value", missing)

    # ==================== the file ====================

    async def save(self) -> None:
        """Write the file layer (``config.yaml`` values and ``set()`` changes) to :attr:`path`.

        The write is atomic: a temporary file in the same folder, flushed to
        disk, then renamed over the old one. If anything fails the old file is
        left as it was and the error is raised.
        """
        if self._path is None:
            return
        self._saves_started += 1
        text = yaml.safe_dump(
            self._file_values, sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        await asyncio.to_thread(self._write, self._path, self._saves_started, text)
        self._file_lines = load_yaml_with_lines(text, self._label)[1]

    def _write(self, path: Path, number: int, text: str) -> None:
        with self._write_lock:
            if number < self._save_written:
                return  # a later save already wrote newer values
            _write_atomically(path, text)
            self._save_written = number

    async def reload(self) -> None:
        """Read :attr:`path` again, dropping unsaved ``set()`` changes.

        If the file is now invalid a :class:`ConfigError` is raised and the
        previous values stay in place.
        """
        if self._path is None:
            return
        values, lines = await asyncio.to_thread(self._read_file)
        self._merged = self._check(values, self._overrides, lines)
        self._file_values, self._file_lines = values, lines

    def _read_file(self) -> tuple[dict[str, Any], LineMap]:
        assert self._path is not None
        label = self._label
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, EMPTY_LINE_MAP
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{label} is not UTF-8 text", [Problem("", str(exc), file=label)]
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{label} cannot be read", [Problem("", exc.strerror or str(exc), file=label)]
            ) from None
        try:
            data, lines = load_yaml_with_lines(text, label)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label} is not valid YAML", [syntax_problem(exc, label)]) from None
        if data is None:
            return {}, lines
        if not isinstance(data, dict):
            problem = Problem(
                "",
                f"must be a mapping of settings (key: value), got {describe_value(data)}",
                line=1,
                file=label,
            )
            raise ConfigError(f"{label} is not a mapping", [problem])
        problems = duplicate_key_problems(lines, label)
        problems += [
            Problem(format_path(loc), message, line=lines.line_of(loc), file=label)
            for loc, message in non_json_values(data)
        ]
        if problems:
            raise ConfigError(f"{label}: invalid configuration", problems)
        return data, lines

    # ==================== checking ====================

    def _key_path(self, key: str) -> Loc:
        if not isinstance(key, str):
            raise TypeError(f"a config key must be a string, got {type(key).__name__} {key!r}")
        if not key:
            raise ConfigError(
                "cannot set ''", [Problem("", "a config key must be a non-empty string, got ''")]
            )
        properties = (self._schema or {}).get("properties", {})
        if "." not in key or key in self._merged or key in properties:
            return (key,)
        parts = tuple(key.split("."))
        if not all(parts):
            message = "has an empty part between dots (or a dot at an end)"
            raise ConfigError(f"cannot set {key!r}", [Problem(key, message)])
        return parts

    def _check_containers(self, key: str, loc: Loc) -> None:
        """Refuse ``set("a.b", ...)`` when ``a`` holds something other than a mapping."""
        node: Any = self._merged
        for depth, part in enumerate(loc[:-1]):
            node = node.get(part) if isinstance(node, dict) else None
            if node is not None and not isinstance(node, dict):
                where = loc[: depth + 1]
                message = (
                    f"is {describe_value(node)}, not a mapping, so {key!r} cannot be set inside it"
                )
                raise ConfigError(f"cannot set {key!r}", [Problem(format_path(where), message)])

    def _check(
        self,
        file_values: dict[str, Any],
        overrides: dict[str, Any],
        lines: LineMap,
        *,
        changed: Loc | None = None,
        summary: str | None = None,
    ) -> dict[str, Any]:
        """Merge the layers and validate the result; return it or raise ConfigError."""
        merged = deep_merge(deep_merge(self._defaults, file_values), overrides)
        if self._validator is None:
            return merged
        problems = []
        for loc, message in schema_violations(self._validator, merged):
            file, line = self._origin(loc, file_values, overrides, lines, changed)
            problems.append(Problem(format_path(loc), message, line=line, file=file))
        if problems:
            problems.sort(key=lambda problem: problem.line if problem.line is not None else 1 << 30)
            raise ConfigError(summary or f"{self._label}: invalid configuration", problems)
        return merged

    def _origin(
        self,
        loc: Loc,
        file_values: dict[str, Any],
        overrides: dict[str, Any],
        lines: LineMap,
        changed: Loc | None,
    ) -> tuple[str | None, int | None]:
        """Which layer a bad value came from: (file label, line) for the error."""
        if changed is not None and (loc[: len(changed)] == changed or changed[: len(loc)] == loc):
            return None, None
        for end in range(len(loc), 0, -1):
            prefix = loc[:end]
            if _has_path(overrides, prefix):
                return _OVERRIDES_LABEL, None
            if _has_path(file_values, prefix):
                return self._label, lines.line_of(prefix)
        return (self._label if self._path is not None else None), None


# ==================== JSON Schema helpers (also used by the manifest) ====================


def make_validator(schema: Mapping[str, Any]) -> Any:
    """A validator for ``schema``: its ``$schema`` draft, 2020-12 by default, formats checked.

    Its ``$ref`` resolve only inside ``schema``: nothing is ever fetched
    (see :mod:`ops_center_sdk.schema_safety`).
    """
    cls = _validator_class(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=local_only_registry())


def _validator_class(schema: Mapping[str, Any]) -> Any:
    # jsonschema is imported on first use: it costs ~40 ms and most manifests have no schema.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    dialect = schema.get("$schema")
    if isinstance(dialect, str):
        return known_drafts().get(dialect.rstrip("#"), Draft202012Validator)
    return Draft202012Validator


def config_schema_problems(schema: Any) -> list[Violation]:
    """What makes ``schema`` unusable as a config schema, as (path in the schema, message).

    The schema must be valid JSON Schema describing a mapping, use no
    misspelt keywords, and every ``default`` must satisfy its own schema.
    """
    if not isinstance(schema, Mapping):
        return [((), f"must be a JSON Schema mapping, got {describe_value(schema)}")]
    problems = list(non_json_values(schema))
    if problems:
        return problems
    problems = schema_dialect_problems(schema)
    if problems:
        return problems
    try:
        problems = _meta_schema_problems(schema)
        declared = schema.get("type")
        if declared is not None and declared != "object":
            problems.append(
                (
                    ("type",),
                    f"must be 'object': the config is a mapping of settings, got {declared!r}",
                )
            )
        problems += _keyword_typos(schema, ())
        problems += schema_safety_problems(schema)
        if not problems:
            problems = _default_problems(schema)
    except RecursionError:
        return [((), "is nested too deeply to be checked; flatten it (use $defs and $ref)")]
    return problems


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The config made of the schema's ``default`` values, nested objects included.

    >>> schema_defaults({"properties": {"a": {"default": 1},
    ...     "b": {"type": "object", "properties": {"c": {"default": True}}}}})
    {'a': 1, 'b': {'c': True}}
    """
    defaults: dict[str, Any] = {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return defaults
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        nested = schema_defaults(prop)
        if "default" in prop:
            value = copy.deepcopy(prop["default"])
            defaults[name] = deep_merge(nested, value) if isinstance(value, dict) else value
        elif nested:
            defaults[name] = nested
    return defaults


def schema_violations(
    validator: Any, instance: Any, *, only_required: bool = False
) -> list[Violation]:
    """Each way ``instance`` breaks the validator's schema, as (key path, message).

    ``required`` keys with no value are left out (see the module docs), or are
    the only thing reported with ``only_required=True``.
    """
    from referencing.exceptions import Unresolvable

    found: dict[Violation, None] = {}
    try:
        for error in validator.iter_errors(instance):
            if (error.validator == "required") != only_required:
                continue
            for violation in _describe(error):
                found[violation] = None
    except RecursionError:
        # schema_safety refuses the loops it can see; this is the last line for the rest.
        return [((), "checking the value against the schema never ends (a $ref loops)")]
    except Unresolvable as exc:
        return [((), f"the schema's reference {exc.ref!r} cannot be resolved inside it")]
    return list(found)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``top``; nested mappings merge, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _describe(error: Any) -> list[Violation]:
    loc: Loc = tuple(error.absolute_path)
    rule = error.validator
    expected = error.validator_value
    value = error.instance
    got = describe_value(value)
    if rule == "type":
        types = " or ".join(expected) if isinstance(expected, list) else expected
        return [(loc, f"must be of type {types}, got {got}")]
    bounds = {
        "maximum": "<=",
        "minimum": ">=",
        "exclusiveMaximum": "<",
        "exclusiveMinimum": ">",
    }
    if rule in bounds:
        return [(loc, f"must be {bounds[rule]} {expected} ({rule}), got {value}")]
    if rule == "required":
        missing = [name for name in expected if isinstance(value, dict) and name not in value]
        return [((*loc, name), "is required and has no value (required)") for name in missing]
    if rule == "additionalProperties" and isinstance(value, dict):
        return _unknown_keys(loc, value, error.schema)
    if rule == "enum":
        allowed = ", ".join(repr(item) for item in expected)
        return [
            (loc, f"must be one of {allowed} (enum), got {got}{_did_you_mean(value, expected)}")
        ]
    if rule == "const":
        return [(loc, f"must be {expected!r} (const), got {got}")]
    if rule in ("minLength", "maxLength"):
        side = "at least" if rule == "minLength" else "at most"
        return [(loc, f"must be {side} {expected} characters long ({rule}), got {got}")]
    if rule in ("minItems", "maxItems", "minProperties", "maxProperties"):
        side = "at least" if rule.startswith("min") else "at most"
        noun = "items" if rule.endswith("Items") else "keys"
        return [(loc, f"must have {side} {expected} {noun} ({rule}), got {len(value)}")]
    if rule == "pattern":
        return [(loc, f"must match the pattern {expected!r} (pattern), got {got}")]
    if rule == "format":
        return [(loc, f"must be a valid {expected} (format), got {got}")]
    if rule == "multipleOf":
        return [(loc, f"must be a multiple of {expected} (multipleOf), got {value}")]
    if rule == "uniqueItems":
        return [(loc, "must not repeat an item (uniqueItems)")]
    if rule in ("anyOf", "oneOf") and error.context:
        from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

        closest = best_match(error.context)
        how = "exactly one" if rule == "oneOf" else "at least one"
        detail = _describe(closest)
        hint = f"; closest: {format_path(detail[0][0]) or 'value'} {detail[0][1]}" if detail else ""
        return [(loc, f"must match {how} of the allowed schemas ({rule}){hint}")]
    return [(loc, f"{error.message} ({rule})")]


def _unknown_keys(loc: Loc, value: dict[str, Any], schema: Mapping[str, Any]) -> list[Violation]:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    allowed = ", ".join(known) or "none"
    return [
        (
            (*loc, key),
            f"unknown key (additionalProperties: false){_did_you_mean(key, known)} "
            f"Allowed keys: {allowed}.",
        )
        for key in value
        if key not in known and not any(re.search(pattern, key) for pattern in patterns)
    ]


def _did_you_mean(value: Any, choices: Any) -> str:
    if not isinstance(value, str):
        return "."
    names = [str(choice) for choice in choices]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else "."


def _meta_schema_problems(schema: Mapping[str, Any]) -> list[Violation]:
    cls = _validator_class(schema)
    meta = cls(cls.META_SCHEMA, registry=local_only_registry())
    problems: list[Violation] = []
    for error in meta.iter_errors(schema):
        loc: Loc = tuple(error.absolute_path)
        if loc and loc[-1] == "type" and isinstance(error.instance, str):
            types = ("string", "number", "integer", "boolean", "object", "array", "null")
            problems.append(
                (
                    loc,
                    f"unknown type {error.instance!r}{_did_you_mean(error.instance, types)} "
                    f"Allowed types: {', '.join(types)}.",
                )
            )
        else:
            problems.append((loc, f"{error.message} (JSON Schema rule {error.validator!r})"))
    return problems


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
)
_ANNOTATIONS = (
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
    "definitions",
    "dependencies",
    "additionalItems",
)


@functools.cache
def _keywords() -> tuple[str, ...]:
    keywords: tuple[str, ...] = (*_validator_class({}).VALIDATORS, *_ANNOTATIONS, "$defs")
    return keywords


def _keyword_typos(schema: Mapping[str, Any], loc: Loc) -> list[Violation]:
    """Keys that look like a misspelt keyword (``defualt``): JSON Schema would ignore them."""
    problems: list[Violation] = []
    for key, value in schema.items():
        if key not in _keywords():
            close = difflib.get_close_matches(key, _keywords(), n=1, cutoff=0.8)
            if close:
                problems.append(
                    ((*loc, key), f"unknown JSON Schema keyword; did you mean {close[0]!r}?")
                )
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                if isinstance(sub, Mapping):
                    problems += _keyword_typos(sub, (*loc, key, name))
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                if isinstance(sub, Mapping):
                    problems += _keyword_typos(sub, (*loc, key, index))
        elif key in _SCHEMA_VALUES and isinstance(value, Mapping):
            problems += _keyword_typos(value, (*loc, key))
    return problems


def _default_problems(schema: Mapping[str, Any]) -> list[Violation]:
    root = make_validator(schema)
    problems: list[Violation] = []

    def visit(sub: Mapping[str, Any], loc: Loc) -> None:
        properties = sub.get("properties")
        if not isinstance(properties, Mapping):
            return
        for name, prop in properties.items():
            if not isinstance(prop, Mapping):
                continue
            here = (*loc, "properties", name)
            if "default" in prop:
                default = prop["default"]
                for inner, message in schema_violations(root.evolve(schema=prop), default):
                    where = f"at {format_path(inner)}: " if inner else ""
                    problems.append(
                        (
                            (*here, "default"),
                            f"default {describe_value(default)} breaks its own schema: "
                            f"{where}{message}",
                        )
                    )
            visit(prop, here)

    visit(schema, ())
    if not problems:
        for inner, message in schema_violations(root, schema_defaults(schema)):
            where = format_path(inner) or "the top level"
            problems.append(((), f"the defaults together break the schema at {where}: {message}"))
    return problems


# ==================== small helpers ====================


def _json_copy(value: Any, loc: Loc) -> Any:
    """A deep copy of the value at ``loc`` (tuples become lists); TypeError if it is not JSON."""
    for bad, message in non_json_values(value, loc):
        raise TypeError(f"config value {format_path(bad)!r}: {message}")
    return _plain_copy(value)


def _json_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of host override values; TypeError naming the key if one is not JSON."""
    if not isinstance(values, Mapping):
        raise TypeError(f"config overrides must be a mapping, got {describe_value(values)}")
    copied: dict[str, Any] = _json_copy(values, ())
    return copied


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_copy(item) for item in value]
    return value


def _is_index(part: str) -> bool:
    """True for ``"0"``, ``"12"``: ASCII digits only (``"²".isdigit()`` is true too)."""
    return part.isascii() and part.isdigit()


def _has_path(data: Any, loc: Loc) -> bool:
    node = data
    for part in loc:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return False
        node = node[part]
    return True


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temp file in the same folder, fsync, rename."""
    folder = path.parent
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); an existing config keeps its own mode.
        with suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
