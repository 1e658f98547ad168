"""What makes a ``config_schema`` safe to evaluate, checked before any validator runs.

A schema comes from a plugin's ``plugin.yaml``, so it may be hostile. Left
to itself, ``jsonschema`` would fetch a ``$ref`` URL over the network (no
timeout), recurse without end on a ``$ref`` that points back at itself, and
raise ``re.error`` on a ``pattern`` that does not compile. Here:

- ``$schema``, when given, must name a draft ``jsonschema`` knows;
- every ``$ref`` (and ``$dynamicRef``) resolves inside the document: a
  ``#`` fragment (a JSON pointer or an ``$anchor``), or an ``$id`` declared
  in the document. Nothing is ever retrieved: :data:`LOCAL_ONLY` is the
  registry validators are built with, and it refuses any retrieval;
- no chain of ``$ref`` (and in-place keywords such as ``allOf``) leads back
  to where it started without stepping into a property or an item;
- every ``pattern`` and ``patternProperties`` key is a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any
from urllib.parse import unquote

from .yaml_source import KeyPath, describe_value, format_path

Violation = tuple[KeyPath, str]

_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose value is data, not a schema: a "$ref" written inside is just a string.
_DATA_KEYWORDS = frozenset(("default", "const", "enum", "examples"))
# Keywords that apply their subschemas to the same value (no step into it).
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")


class _NeverRetrieve:
    """A ``referencing`` retrieve function that refuses every URI (no network, no files)."""

    def __call__(self, uri: str) -> Any:
        from referencing.exceptions import NoSuchResource

        raise NoSuchResource(uri)


@cache
def local_only_registry() -> Any:
    """The ``referencing`` registry validators use: never retrieves anything.

    ``jsonschema`` adds the bundled meta-schemas to it, so ``$schema`` and the
    drafts' own references still resolve (from memory).
    """
    from referencing import Registry

    return Registry(retrieve=_NeverRetrieve())  # type: ignore[call-arg]


@cache
def known_drafts() -> dict[str, Any]:
    """The ``$schema`` URIs ``jsonschema`` knows (without a trailing ``#``) and their classes."""
    from jsonschema import validators  # type: ignore[import-untyped]

    classes = (
        validators.Draft3Validator,
        validators.Draft4Validator,
        validators.Draft6Validator,
        validators.Draft7Validator,
        validators.Draft201909Validator,
        validators.Draft202012Validator,
    )
    drafts: dict[str, Any] = {}
    for cls in classes:
        uri = cls.META_SCHEMA.get("$id", cls.META_SCHEMA.get("id"))
        drafts[str(uri).rstrip("#")] = cls
    return drafts


def schema_dialect_problems(schema: Mapping[str, Any]) -> list[Violation]:
    """``$schema`` must be a string naming a known draft (checked before anything else)."""
    if "$schema" not in schema:
        return []
    value = schema["$schema"]
    known = ", ".join(known_drafts())
    if not isinstance(value, str):
        return [
            (
                ("$schema",),
                f"must be a string naming a JSON Schema draft, got "
                f"{describe_value(value)}. Known drafts: {known}.",
            )
        ]
    if value.rstrip("#") not in known_drafts():
        return [(("$schema",), f"unknown JSON Schema draft {value!r}. Known drafts: {known}.")]
    return []


def schema_safety_problems(schema: Mapping[str, Any]) -> list[Violation]:
    """Every ``$ref`` that leaves the document or loops, and every pattern that does not compile.

    >>> schema_safety_problems({"properties": {"x": {"pattern": "(["}}})[0][0]
    ('properties', 'x', 'pattern')
    """
    problems: list[Violation] = []
    nodes = dict(_subschemas(schema, ()))
    ids = {node["$id"].rstrip("#") for node in nodes.values() if isinstance(node.get("$id"), str)}
    anchors: dict[str, KeyPath] = {}
    for loc, node in nodes.items():
        for keyword in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(keyword), str):
                anchors.setdefault(node[keyword], loc)
    targets: dict[KeyPath, KeyPath] = {}
    for loc, node in nodes.items():
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            where = (*loc, keyword)
            target, problem = _resolve(schema, ref, ids, anchors)
            if problem is not None:
                problems.append((where, problem))
            elif target is not None and keyword == "$ref":
                targets[loc] = target
        problems += _pattern_problems(node, loc)
    problems += _loops(nodes, targets)
    return problems


def _subschemas(node: Any, loc: KeyPath) -> Iterator[tuple[KeyPath, Mapping[str, Any]]]:
    """Each mapping in schema positions (not inside ``default``, ``enum``...), with its path."""
    if not isinstance(node, Mapping):
        return
    yield loc, node
    for key, value in node.items():
        if key in _DATA_KEYWORDS or not isinstance(key, str):
            continue
        if isinstance(value, Mapping):
            yield from _subschemas(value, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from _subschemas(item, (*loc, key, index))


def _resolve(
    schema: Mapping[str, Any], ref: str, ids: set[str], anchors: Mapping[str, KeyPath]
) -> tuple[KeyPath | None, str | None]:
    """Where a local ``$ref`` leads (a path in the document), or why it is refused."""
    base, hash_mark, fragment = ref.partition("#")
    if base:
        if base.rstrip("#") in ids:
            return None, None  # an $id of this document: jsonschema resolves it from memory
        return None, (
            f"{ref!r} refers outside the document: a config_schema may only use references "
            "inside itself ('#/$defs/name', an '$anchor', or an '$id' it declares); "
            "nothing is fetched"
        )
    if not hash_mark or not fragment:
        return (), None
    if not fragment.startswith("/"):
        if fragment in anchors:
            return anchors[fragment], None
        return None, f"{ref!r}: no '$anchor' named {fragment!r} in the document"
    node: Any = schema
    path: list[str | int] = []
    for raw in fragment[1:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            path.append(int(part))
        else:
            return None, f"{ref!r} does not point at anything in the document (no {part!r})"
    if not isinstance(node, Mapping | bool):
        return None, f"{ref!r} points at {describe_value(node)}, not a schema"
    return tuple(path), None


def _in_place(node: Mapping[str, Any], loc: KeyPath) -> Iterator[KeyPath]:
    """The subschemas applied to the same value as ``node`` itself."""
    for keyword in _IN_PLACE_ONE:
        if isinstance(node.get(keyword), Mapping):
            yield (*loc, keyword)
    for keyword in _IN_PLACE_MANY:
        items = node.get(keyword)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    yield (*loc, keyword, index)
    dependent = node.get("dependentSchemas")
    if isinstance(dependent, Mapping):
        for name, item in dependent.items():
            if isinstance(item, Mapping):
                yield (*loc, "dependentSchemas", name)


def _loops(
    nodes: Mapping[KeyPath, Mapping[str, Any]], targets: Mapping[KeyPath, KeyPath]
) -> list[Violation]:
    """``$ref`` chains that come back to where they started on the same value."""
    edges: dict[KeyPath, list[KeyPath]] = {}
    for loc, node in nodes.items():
        following = list(_in_place(node, loc))
        if loc in targets:
            following.append(targets[loc])
        edges[loc] = following
    problems: list[Violation] = []
    state: dict[KeyPath, int] = {}  # 1: on the current chain, 2: finished
    for start in edges:
        if state.get(start):
            continue
        # Iterative depth-first search: a hostile schema may chain thousands of $refs.
        stack: list[tuple[KeyPath, Iterator[KeyPath]]] = [(start, iter(edges[start]))]
        state[start] = 1
        while stack:
            loc, pending = stack[-1]
            step = next(pending, None)
            if step is None:
                state[loc] = 2
                stack.pop()
                continue
            if step not in edges:
                continue
            if state.get(step) == 1:
                ref = nodes[loc].get("$ref") if targets.get(loc) == step else None
                where = (*loc, "$ref") if ref is not None else loc
                shown = format_path(step) or "the top of the schema"
                problems.append(
                    (
                        where,
                        f"{ref or 'this schema'!r} leads back to {shown} without stepping into "
                        "a property or an item: checking a value would never end",
                    )
                )
            elif not state.get(step):
                state[step] = 1
                stack.append((step, iter(edges[step])))
    return problems


def _pattern_problems(node: Mapping[str, Any], loc: KeyPath) -> list[Violation]:
    problems: list[Violation] = []
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        problem = _regex_problem(pattern)
        if problem:
            problems.append(((*loc, "pattern"), problem))
    properties = node.get("patternProperties")
    if isinstance(properties, Mapping):
        for key in properties:
            problem = _regex_problem(key) if isinstance(key, str) else None
            if problem:
                problems.append(((*loc, "patternProperties", key), problem))
    return problems


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return f"{pattern!r} is not a valid regular expression: {exc}"
    return None
