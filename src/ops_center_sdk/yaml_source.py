"""YAML documents that remember where each value was written.

``plugin.yaml`` and ``config.yaml`` errors name the line of the field at
fault, so loading keeps a map from key paths (``("hooks", 1, "event")``) to
1-based line numbers beside the data.

Loading follows ``yaml.safe_load`` with one change: timestamps stay strings
(``since: 2024-01-01`` is ``"2024-01-01"``), because manifests and configs hold
JSON values and a ``datetime.date`` would fail every string schema.
"""

from __future__ import annotations

import math
import reprlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem

#: One step of a path into a document: a mapping key or a list index.
PathPart = str | int
KeyPath = tuple[PathPart, ...]

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type (dates stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping (YAML keeps the last silently)."""

    path: KeyPath
    line: int
    first_line: int


@dataclass(frozen=True)
class LineMap:
    """Where each key and list item of a document starts (1-based lines)."""

    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    duplicates: tuple[DuplicateKey, ...] = ()

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line of ``path``, or of its closest ancestor that was written down.

        A missing field has no line of its own; its parent's line is the best
        place to point at.
        """
        parts = tuple(path)
        for end in range(len(parts), 0, -1):
            line = self.lines.get(parts[:end])
            if line is not None:
                return line
        return None


EMPTY_LINE_MAP = LineMap()


def load_yaml_with_lines(text: str, source: str = "<yaml>") -> tuple[Any, LineMap]:
    """Parse one YAML document and map each key path to its line.

    >>> data, lines = load_yaml_with_lines("a:\\n  b: [1, 2]\\n")
    >>> data, lines.line_of(("a", "b", 1))
    ({'a': {'b': [1, 2]}}, 2)

    Raises ``yaml.YAMLError`` on a syntax error; :func:`syntax_problem`
    turns it into a :class:`~ops_center_sdk.errors.Problem`.
    """
    loader = _Loader(text)
    loader.name = source
    try:
        return _load(loader, source)
    except RecursionError:
        raise yaml.YAMLError(f"{source}: the document is nested too deeply") from None
    finally:
        loader.dispose()


def _load(loader: _Loader, source: str) -> tuple[Any, LineMap]:
    node = loader.get_single_node()
    if node is None:
        return None, EMPTY_LINE_MAP
    if _expanded_size(node, {}) > MAX_NODES:
        raise yaml.YAMLError(
            f"{source}: the document expands to more than {MAX_NODES} values "
            "(aliases of aliases); write the values out instead"
        )
    lines: dict[KeyPath, int] = {}
    duplicates: list[DuplicateKey] = []
    # Walk before constructing: construction flattens merge keys (``<<``) in place.
    _walk(loader, node, (), lines, duplicates, set())
    return loader.construct_document(node), LineMap(lines, tuple(duplicates))


#: Most values a document may hold once its aliases (``*name``) are expanded.
MAX_NODES = 100_000


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are expanded (each shared node once)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node that contains itself counts once
    total = 1
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            total += _expanded_size(key_node, sizes) + _expanded_size(value_node, sizes)
            if total > MAX_NODES:
                break
    elif isinstance(node, SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes)
            if total > MAX_NODES:
                break
    sizes[id(node)] = total
    return total


def _walk(
    loader: _Loader,
    node: Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    duplicates: list[DuplicateKey],
    active: set[int],
) -> None:
    # An alias inside its own anchor (``a: &x [*x]``) makes a value that contains itself:
    # no JSON value is like that, and every later walk over the data would recurse forever.
    if id(node) in active:
        raise yaml.MarkedYAMLError(
            problem=f"{format_path(path) or 'the document'}: an alias (*name) is used inside "
            "the anchor (&name) it refers to, so the value would contain itself",
            problem_mark=node.start_mark,
        )
    active.add(id(node))
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if child in lines:
                duplicates.append(DuplicateKey(child, line, lines[child]))
            lines[child] = line
            _walk(loader, value_node, child, lines, duplicates, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(loader, item, child, lines, duplicates, active)
    active.discard(id(node))


def syntax_problem(error: yaml.YAMLError, source: str) -> Problem:
    """A YAML parser error as a Problem with the parser's line and column."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    what = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context:
        what = f"{what} ({context})"
    if mark is None:
        return Problem("", f"invalid YAML: {what}", file=source)
    return Problem(
        "",
        f"invalid YAML at column {mark.column + 1}: {what}",
        line=mark.line + 1,
        file=source,
    )


def duplicate_key_problems(lines: LineMap, source: str) -> list[Problem]:
    """One Problem per key written twice in the same mapping."""
    return [
        Problem(
            format_path(duplicate.path),
            f"written twice (first on line {duplicate.first_line}); YAML would keep only the "
            "last one, remove the other",
            line=duplicate.line,
            file=source,
        )
        for duplicate in lines.duplicates
    ]


def format_path(path: Sequence[PathPart]) -> str:
    """``("hooks", 1, "event")`` -> ``"hooks[1].event"``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class _ShortRepr(reprlib.Repr):
    """``reprlib.Repr`` that also survives integers too long for decimal text."""

    def repr_int(self, x: int, level: int) -> str:
        if _too_long_for_text(x):
            return f"<integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_short = _ShortRepr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 5
_short.maxdict = 4


def describe_value(value: Any) -> str:
    """A value named by its YAML/JSON kind: ``string 'high'``, ``integer 5``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        if _too_long_for_text(value):
            return f"integer of {value.bit_length()} bits"
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {_short.repr(value)}"
    if isinstance(value, Mapping):
        return f"mapping {_short.repr(dict(value))}"
    if isinstance(value, list | tuple):
        return f"list {_short.repr(list(value))}"
    return f"{type(value).__name__} {_short.repr(value)}"


#: Deepest nesting of lists and mappings a JSON value may have (deeper ones are refused
#: before anything recurses into them: copying, merging and schema checks all recurse).
MAX_JSON_DEPTH = 64


def _too_long_for_text(value: int) -> bool:
    """True for an integer Python refuses to write in decimal (``sys.int_info`` limit)."""
    digits = sys.get_int_max_str_digits()
    # Below this many bits an integer has fewer decimal digits than the limit.
    return digits > 0 and value.bit_length() > (digits - 1) * 3.32


def non_json_values(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Each place in ``value`` that is not a JSON value, with what is wrong there.

    JSON values are null, booleans, finite numbers, strings, lists and
    mappings with string keys, nested at most :data:`MAX_JSON_DEPTH` deep,
    with integers short enough to be written as text.
    """
    yield from _non_json(value, path, 0)


def _non_json(value: Any, path: KeyPath, depth: int) -> Iterator[tuple[KeyPath, str]]:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if _too_long_for_text(value):
            yield (
                path,
                f"{describe_value(value)} has more than {sys.get_int_max_str_digits()} "
                "digits, too many to write as text",
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, f"{value} is not a finite number (JSON has no NaN or infinity)"
        return
    if isinstance(value, list | tuple | Mapping) and depth >= MAX_JSON_DEPTH:
        yield path, f"is nested more than {MAX_JSON_DEPTH} lists or mappings deep"
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _non_json(item, (*path, index), depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                yield (*path, str(key)), f"key {key!r} is not a string (JSON keys are strings)"
            else:
                yield from _non_json(item, (*path, key), depth + 1)
        return
    yield path, f"{type(value).__name__} {_short.repr(value)} is not a JSON value"
