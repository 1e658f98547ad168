"""Permissions against the code: each ``plugin.api.<resource>.<call>(...)`` needs one.

The plugin's Python files (the entrypoint and its helper modules; not its
tests) are read with :mod:`ast`. A call through ``plugin.api``, or through a
name bound to it (``api = plugin.api``, ``devices = plugin.api.devices``),
must be one the API client has, and ``permissions`` in ``plugin.yaml`` must
grant what it needs (:data:`~ops_center_sdk.permissions.REQUIRED_PERMISSION`).
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .entrypoint import dotted_name
from .findings import MANIFEST_FILE, Findings

if TYPE_CHECKING:
    from ..manifest import Manifest
    from ..yaml_source import LineMap

_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "dist", "tests", "test", ".ops-center"}
)


def _api_calls() -> dict[str, dict[str, str]]:
    """``{resource: {call: permission}}`` for every call ``plugin.api`` offers."""
    from ..api import resources
    from ..permissions import REQUIRED_PERMISSION

    calls: dict[str, dict[str, str]] = {}
    for resource_class in (
        resources.Devices,
        resources.Users,
        resources.Organizations,
        resources.Alerts,
        resources.Webhooks,
    ):
        name = resource_class.name
        table: dict[str, str] = {}
        for method in dir(resource_class):
            if method.startswith("_"):
                continue
            key = (name, "list") if method == "iterate" else (name, method)
            if (name, method) == ("devices", "push_metrics"):
                key = ("metrics", "create")
            permission = REQUIRED_PERMISSION.get(key)
            if permission is not None:
                table[method] = permission
        calls[name] = table
    return calls


@dataclass(frozen=True)
class _APICall:
    file: str
    line: int
    resource: str
    call: str


def _python_files(root: Path, entrypoint: str) -> Iterator[Path]:
    yield root / entrypoint
    for directory, folders, files in os.walk(root):
        folders[:] = sorted(
            d
            for d in folders
            if d not in _SKIPPED_DIRS
            and not d.startswith(".")
            and not (Path(directory, d) / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            path = Path(directory, name)
            if name.endswith(".py") and path != root / entrypoint and not name.startswith("test_"):
                yield path


def _find_api_calls(module: ast.Module, shown: str) -> Iterator[_APICall]:
    # Names bound to `<x>.api` or `<x>.api.<resource>` (e.g. `api = plugin.api`).
    api_names: set[str] = set()
    resource_names: dict[str, str] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
            chain = dotted_name(node.value).split(".")
            for target in node.targets:
                if not isinstance(target, ast.Name):
                    continue
                if len(chain) >= 2 and chain[-1] == "api":
                    api_names.add(target.id)
                elif len(chain) >= 3 and chain[-2] == "api":
                    resource_names[target.id] = chain[-1]
    for node in ast.walk(module):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        call = node.func.attr
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in resource_names:
            yield _APICall(shown, node.lineno, resource_names[owner.id], call)
            continue
        if not isinstance(owner, ast.Attribute):
            continue
        base = owner.value
        is_api = (isinstance(base, ast.Attribute) and base.attr == "api") or (
            isinstance(base, ast.Name) and base.id in api_names
        )
        if is_api:
            yield _APICall(shown, node.lineno, owner.attr, call)


def check_api_calls(root: Path, manifest: Manifest, lines: LineMap, found: Findings) -> None:
    """Each ``plugin.api`` call exists and the manifest's permissions grant what it needs."""
    table = _api_calls()
    granted = manifest.permissions
    needed: dict[str, _APICall] = {}
    for path in _python_files(root, manifest.runtime.entrypoint):
        if not path.is_file():
            continue
        shown = path.relative_to(root).as_posix()
        try:
            module = ast.parse(path.read_text(encoding="utf-8"), filename=shown)
        except (SyntaxError, UnicodeDecodeError, OSError, RecursionError, MemoryError, ValueError):
            if shown != manifest.runtime.entrypoint:
                found.warning(
                    "syntax",
                    f"{shown} cannot be parsed, so its API calls were not checked",
                    file=shown,
                    fix=f"correct {shown}",
                )
            continue
        for call in _find_api_calls(module, shown):
            text = f"plugin.api.{call.resource}.{call.call}()"
            calls = table.get(call.resource)
            if calls is None:
                close = difflib.get_close_matches(call.resource, list(table), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                found.error(
                    "api-call",
                    f"{text}: plugin.api has no {call.resource!r}{hint} It offers "
                    f"{', '.join(table)}",
                    file=call.file,
                    line=call.line,
                    fix="call one of the API's resources (see the SDK's API Client docs)",
                )
                continue
            permission = calls.get(call.call)
            if permission is None:
                close = difflib.get_close_matches(call.call, list(calls), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                found.error(
                    "api-call",
                    f"{text} is not an API call{hint} plugin.api.{call.resource} offers "
                    f"{', '.join(sorted(calls))}",
                    file=call.file,
                    line=call.line,
                    fix=f"call one of plugin.api.{call.resource}'s methods",
                )
                continue
            needed.setdefault(permission, call)
            if granted is not None and permission not in granted:
                permissions_line = lines.line_of(("permissions",))
                where = f" (line {permissions_line})" if permissions_line else ""
                found.error(
                    "permission",
                    f"{text} needs the permission {permission!r}, which plugin.yaml does not "
                    f"grant (granted: {', '.join(granted) or 'none'})",
                    file=call.file,
                    line=call.line,
                    fix=f"add `- {permission}` to permissions in plugin.yaml{where}",
                )
    if granted is None and needed:
        listed = ", ".join(sorted(needed))
        found.warning(
            "permission",
            f"plugin.yaml lists no permissions, so nothing limits the plugin's API key; its "
            f"code needs {listed}",
            file=MANIFEST_FILE,
            fix=f"add `permissions: [{listed}]` to plugin.yaml",
        )
