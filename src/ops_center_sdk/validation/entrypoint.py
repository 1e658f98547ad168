"""The entrypoint read with :mod:`ast` (never run), checked against ``plugin.yaml``.

What the module declares: the ``Plugin(...)`` object, the module-level
functions, and each ``@plugin.hook``, ``@plugin.filter_hook`` and
``@plugin.route`` registration with its literal arguments. Then each hook
and route of the manifest must have its function, registered with a
decorator that agrees; a registration the manifest lacks is a warning.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .findings import MANIFEST_FILE, Findings

if TYPE_CHECKING:
    from ..manifest import Manifest
    from ..yaml_source import LineMap

DEFAULT_PRIORITY = 10


def parse_module(path: Path, shown: str, found: Findings) -> ast.Module | None:
    """The module in ``path`` as an AST; a syntax error becomes a finding (``None``)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        found.error("unreadable", f"cannot read {shown}: {exc}", file=shown)
        return None
    try:
        return ast.parse(source, filename=shown)
    except SyntaxError as exc:
        if "too many nested" in (exc.msg or ""):
            # The tokenizer's own limit (200 open brackets), not a mistake in the syntax.
            found.error(
                "syntax",
                f"Python cannot parse {shown}: {exc.msg}; an expression is nested too deeply "
                f"for the parser (at most {_MAX_BRACKETS} open brackets)",
                file=shown,
                line=exc.lineno,
                fix=f"simplify {shown}: split deeply nested expressions into several statements",
            )
            return None
        found.error(
            "syntax",
            f"Python syntax error: {exc.msg}",
            file=shown,
            line=exc.lineno,
            fix=f"correct the syntax on line {exc.lineno} of {shown}",
        )
        return None
    except (RecursionError, MemoryError, ValueError) as exc:
        # The parser gives up on very deep nesting (RecursionError, or MemoryError for its
        # own stack) and on NUL bytes (ValueError): Python could not import it either.
        found.error(
            "syntax",
            f"Python cannot parse {shown}: {_parse_failure(exc)}",
            file=shown,
            fix=f"simplify {shown}: split deeply nested expressions into several statements",
        )
        return None


#: How many brackets CPython's tokenizer lets a line open (``MAXLEVEL``).
_MAX_BRACKETS = 200


def _parse_failure(exc: BaseException) -> str:
    if isinstance(exc, ValueError):
        return str(exc)
    return "an expression is nested too deeply for the parser"


_UNKNOWN: Any = object()
"""A decorator argument that is not a literal (cannot be compared statically)."""


@dataclass(frozen=True)
class _Registration:
    kind: str  # "hook", "filter_hook" or "route"
    function: str
    line: int
    target: Any  # event / filter name / route path, or _UNKNOWN
    priority: Any = _UNKNOWN
    methods: Any = _UNKNOWN
    public: Any = False


@dataclass
class EntrypointFacts:
    plugin_names: set[str]
    plugin_call: ast.Call | None
    functions: dict[str, int]  # module-level function name -> line
    other_names: set[str]  # module-level names bound otherwise (imports, assignments)
    registrations: list[_Registration]
    exports_app: bool

    @classmethod
    def read(cls, module: ast.Module) -> EntrypointFacts:
        plugin_classes, sdk_modules = _sdk_aliases(module)
        names: set[str] = set()
        call: ast.Call | None = None
        functions: dict[str, int] = {}
        other: set[str] = set()
        exports_app = False
        for node in module.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[node.name] = node.lineno
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound = [t.id for t in targets if isinstance(t, ast.Name)]
                other.update(bound)
                exports_app = exports_app or "app" in bound
                value = node.value
                if isinstance(value, ast.Call) and _is_plugin_call(
                    value, plugin_classes, sdk_modules
                ):
                    names.update(bound)
                    call = call or value
            elif isinstance(node, ast.Import | ast.ImportFrom):
                other.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        receivers = names or {"plugin"}
        registrations = [
            registration
            for node in module.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for registration in _registrations(node, receivers)
        ]
        return cls(names, call, functions, other, registrations, exports_app)


def _sdk_aliases(module: ast.Module) -> tuple[set[str], set[str]]:
    classes: set[str] = {"Plugin"}
    modules: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ops_center_sdk"):
            classes.update(a.asname or a.name for a in node.names if a.name == "Plugin")
        elif isinstance(node, ast.Import):
            modules.update(
                a.asname or a.name for a in node.names if a.name.startswith("ops_center_sdk")
            )
    return classes, modules


def _is_plugin_call(call: ast.Call, classes: set[str], modules: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "from_manifest":
        func = func.value
    if isinstance(func, ast.Name):
        return func.id in classes
    if isinstance(func, ast.Attribute) and func.attr == "Plugin":
        return dotted_name(func.value) in modules
    return False


def dotted_name(node: ast.expr) -> str:
    """``plugin.api`` for that attribute chain; empty for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""


def _literal(node: ast.expr | None, default: Any = _UNKNOWN) -> Any:
    if node is None:
        return default
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[position]
    return None


def _keyword(call: ast.Call, keyword: str) -> ast.expr | None:
    return next((item.value for item in call.keywords if item.arg == keyword), None)


def _registrations(
    node: ast.FunctionDef | ast.AsyncFunctionDef, receivers: set[str]
) -> Iterator[_Registration]:
    for decorator in node.decorator_list:
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            continue
        kind = decorator.func.attr
        if kind not in ("hook", "filter_hook", "route"):
            continue
        if dotted_name(decorator.func.value) not in receivers:
            continue
        if kind == "route":
            methods = _literal(_argument(decorator, 1, "methods"), default=None)
            if methods is None:
                methods = ("GET",)
            elif isinstance(methods, list | tuple) and all(isinstance(m, str) for m in methods):
                methods = tuple(sorted({m.upper() for m in methods}))
            else:
                methods = _UNKNOWN
            yield _Registration(
                kind,
                node.name,
                decorator.lineno,
                _literal(_argument(decorator, 0, "path")),
                methods=methods,
                public=_literal(_keyword(decorator, "public"), default=False),
            )
        else:
            target = _literal(_argument(decorator, 0, "event" if kind == "hook" else "name"))
            priority = _literal(_argument(decorator, 1, "priority"), default=DEFAULT_PRIORITY)
            yield _Registration(kind, node.name, decorator.lineno, target, priority=priority)


# ==================== entrypoint vs plugin.yaml ====================


def check_plugin_object(
    facts: EntrypointFacts, manifest: Manifest, entrypoint: str, found: Findings
) -> None:
    """``Plugin(id=..., version=...)`` agrees with plugin.yaml; the module exports ``app``."""
    if facts.plugin_call is None:
        found.warning(
            "plugin-object",
            f"no `plugin = Plugin(...)` at module level in {entrypoint}, so its handlers cannot "
            "be checked against plugin.yaml",
            file=entrypoint,
            fix=f'create the plugin at module level: plugin = Plugin(id="{manifest.id}", ...)',
        )
        return
    call = facts.plugin_call
    for name, position in (("id", 0), ("version", 2)):
        node = _argument(call, position, name)
        value = _literal(node)
        if node is None or value is _UNKNOWN or value == getattr(manifest, name):
            continue
        found.error(
            "plugin-object",
            f"Plugin({name}={value!r}) does not match plugin.yaml's {name} "
            f"{getattr(manifest, name)!r}; loading the plugin would fail",
            file=entrypoint,
            line=node.lineno,
            fix=f"make both say {getattr(manifest, name)!r} (or change plugin.yaml)",
        )
    if not facts.exports_app:
        found.warning(
            "app-export",
            f"{entrypoint} does not export `app`, so `uvicorn {Path(entrypoint).stem}:app` "
            "cannot serve it",
            file=entrypoint,
            fix="end the module with: app = plugin.create_app()",
        )


def _handler_defined(
    found: Findings,
    code: str,
    handler: str,
    where: str,
    line: int | None,
    decorator: str,
    facts: EntrypointFacts,
    entrypoint: str,
) -> bool:
    """True when ``handler`` is a function defined in the entrypoint; else report why not."""
    if handler in facts.functions:
        return True
    if handler in facts.other_names:
        found.warning(
            code,
            f"{where}: {handler!r} is imported or assigned in {entrypoint}, not "
            "defined there, so its registration cannot be checked",
            file=MANIFEST_FILE,
            line=line,
            fix=f"define the handler in {entrypoint} with {decorator}",
        )
        return False
    message, fix = _not_defined(handler, where, facts, entrypoint)
    found.error(code, message, file=MANIFEST_FILE, line=line, fix=fix)
    return False


def _not_defined(
    handler: str, what: str, facts: EntrypointFacts, entrypoint: str
) -> tuple[str, str]:
    close = difflib.get_close_matches(handler, list(facts.functions), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    message = f"{what} names the handler {handler!r}, but {entrypoint} defines no such function"
    fix = (
        f"rename it to {close[0]!r} in plugin.yaml, or define {handler}() in {entrypoint}"
        if close
        else f"define `async def {handler}(...)` in {entrypoint}, or correct the name"
    )
    return message + hint, fix


def check_hooks(
    facts: EntrypointFacts, manifest: Manifest, lines: LineMap, entrypoint: str, found: Findings
) -> None:
    """Each manifest hook has its function, registered for the same event and priority."""
    from ..events import FILTER_CATALOG

    receiver = sorted(facts.plugin_names)[0] if facts.plugin_names else "plugin"
    unknown = _check_event_names(facts, manifest.id, receiver, entrypoint, found)
    declared: set[tuple[str, str, str]] = set()
    for index, hook in enumerate(manifest.hooks):
        kind = "filter_hook" if hook.event in FILTER_CATALOG else "hook"
        declared.add((kind, hook.event, hook.handler))
        where = f"hooks[{index}]"
        line = lines.line_of(("hooks", index, "handler"))
        decorator = f'@{receiver}.{kind}("{hook.event}")'
        if not _handler_defined(
            found, "hook-handler", hook.handler, where, line, decorator, facts, entrypoint
        ):
            continue
        mine = [
            r
            for r in facts.registrations
            if r.function == hook.handler and r.kind in ("hook", "filter_hook")
        ]
        if any(r.target is _UNKNOWN for r in mine):
            continue
        if mine and all(r in unknown for r in mine):
            continue  # the unknown-event finding already says what to change
        mine = [r for r in mine if r not in unknown]
        matching = [r for r in mine if r.kind == kind and r.target == hook.event]
        function_line = facts.functions[hook.handler]
        if matching:
            registered = matching[0]
            if (
                hook.priority is not None
                and registered.priority is not _UNKNOWN
                and registered.priority != hook.priority
            ):
                found.error(
                    "hook-priority",
                    f"{where}: plugin.yaml gives {hook.handler} priority {hook.priority}, the "
                    f"decorator on {entrypoint}:{registered.line} gives {registered.priority}",
                    file=MANIFEST_FILE,
                    line=lines.line_of(("hooks", index, "priority")),
                    fix=f"make both say the same priority (higher runs first; default "
                    f"{DEFAULT_PRIORITY})",
                )
            continue
        wrong_kind = [r for r in mine if r.target == hook.event]
        if wrong_kind:
            noun = "a filter" if kind == "filter_hook" else "an event"
            found.error(
                "hook-decorator",
                f"{where}: {hook.event!r} is {noun}, but {hook.handler} is registered with "
                f"@{receiver}.{wrong_kind[0].kind} on {entrypoint}:{wrong_kind[0].line}",
                file=entrypoint,
                line=wrong_kind[0].line,
                fix=f"use {decorator}",
            )
        elif mine:
            other = ", ".join(repr(r.target) for r in mine)
            found.error(
                "hook-event",
                f"{where}: plugin.yaml says {hook.handler} handles {hook.event!r}, but "
                f"{entrypoint}:{mine[0].line} registers it for {other}",
                file=MANIFEST_FILE,
                line=lines.line_of(("hooks", index, "event")),
                fix="make plugin.yaml's event and the decorator's agree",
            )
        else:
            found.error(
                "hook-decorator",
                f"{where}: {hook.handler} is defined on {entrypoint}:{function_line} but not "
                f"registered, so {hook.event!r} would never reach it",
                file=entrypoint,
                line=function_line,
                fix=f"put {decorator} on the line above `def {hook.handler}`",
            )
    for registration in facts.registrations:
        if registration.kind == "route" or registration.target is _UNKNOWN:
            continue
        if registration in unknown:
            continue
        key = (registration.kind, registration.target, registration.function)
        if key in declared:
            continue
        found.warning(
            "undeclared-hook",
            f"{registration.function} is registered for {registration.target!r} but plugin.yaml "
            "does not declare it",
            file=entrypoint,
            line=registration.line,
            fix=f"add to plugin.yaml's hooks: `- event: {registration.target}` with "
            f"`handler: {registration.function}`",
        )


def _check_event_names(
    facts: EntrypointFacts, plugin_id: str, receiver: str, entrypoint: str, found: Findings
) -> list[_Registration]:
    """An error for each decorator naming an event the catalog lacks; those registrations.

    A name of the other catalog (an event given to ``filter_hook``) is left to the
    decorator checks, which say which decorator to use.
    """
    from ..events import EVENT_CATALOG, FILTER_CATALOG, is_custom_name

    unknown: list[_Registration] = []
    for registration in facts.registrations:
        target = registration.target
        if registration.kind == "route" or not isinstance(target, str):
            continue
        if target in EVENT_CATALOG or target in FILTER_CATALOG:
            continue
        if is_custom_name(target, plugin_id):
            continue
        unknown.append(registration)
        noun = "filter" if registration.kind == "filter_hook" else "event"
        catalog = FILTER_CATALOG if registration.kind == "filter_hook" else EVENT_CATALOG
        close = difflib.get_close_matches(target, list(catalog), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        decorator = f"@{receiver}.{registration.kind}"
        fix = (
            f'use {decorator}("{close[0]}") on line {registration.line} of {entrypoint}'
            if close
            else f"use one of the catalog's {noun}s ({', '.join(sorted(catalog))}), or name "
            f"the plugin's own {noun} '{plugin_id}.<name>'"
        )
        found.error(
            "unknown-event",
            f"{decorator}({target!r}) on {registration.function}: unknown {noun} "
            f"{target!r}{hint} Importing {entrypoint} would fail",
            file=entrypoint,
            line=registration.line,
            fix=fix,
        )
    return unknown


def check_routes(
    facts: EntrypointFacts, manifest: Manifest, lines: LineMap, entrypoint: str, found: Findings
) -> None:
    """Each manifest route has its function, registered at the same path with the same methods.

    Both must say the same of ``public`` too; the routes the host would serve
    without a key are recorded on ``found.public_routes`` (``GET /status``).
    """
    from ..route_access import public_flag

    receiver = sorted(facts.plugin_names)[0] if facts.plugin_names else "plugin"
    declared: set[tuple[str, str]] = set()
    for index, route in enumerate(manifest.routes):
        declared.add((route.path, route.handler))
        where = f"routes[{index}]"
        methods = tuple(sorted(set(route.methods)))
        shown_methods = ", ".join(f'"{m}"' for m in methods)
        decorator = f'@{receiver}.route("{route.path}", methods=[{shown_methods}])'
        line = lines.line_of(("routes", index, "handler"))
        if not _handler_defined(
            found, "route-handler", route.handler, where, line, decorator, facts, entrypoint
        ):
            continue
        mine = [r for r in facts.registrations if r.function == route.handler and r.kind == "route"]
        if any(r.target is _UNKNOWN for r in mine):
            continue
        same_path = [r for r in mine if r.target == route.path]
        if same_path:
            registered = same_path[0]
            code_public = None if registered.public is _UNKNOWN else registered.public is True
            if code_public is not None and code_public != route.public:
                found.error(
                    "route-public",
                    f"{where}: plugin.yaml says {route.path} is "
                    f"{_publicity(route.public)}, the decorator on "
                    f"{entrypoint}:{registered.line} says it is {_publicity(code_public)}; "
                    "the host serves it only with a key until both say public",
                    file=MANIFEST_FILE,
                    line=lines.line_of(("routes", index, "path")),
                    fix=f"say public=True in the decorator and `public: true` in plugin.yaml, "
                    f"or neither (then {route.path} needs an API key)",
                )
            if public_flag(code_public, route.public):
                found.public_routes += [f"{m} {route.path}" for m in methods]
            if registered.methods is not _UNKNOWN and registered.methods != methods:
                found.error(
                    "route-methods",
                    f"{where}: plugin.yaml serves {route.path} with {', '.join(methods)}, the "
                    f"decorator on {entrypoint}:{registered.line} with "
                    f"{', '.join(registered.methods)}",
                    file=MANIFEST_FILE,
                    line=lines.line_of(("routes", index, "methods")),
                    fix="list the same methods in plugin.yaml and in the decorator",
                )
        elif mine:
            found.error(
                "route-path",
                f"{where}: plugin.yaml serves {route.handler} at {route.path!r}, but "
                f"{entrypoint}:{mine[0].line} registers it at {mine[0].target!r}",
                file=MANIFEST_FILE,
                line=lines.line_of(("routes", index, "path")),
                fix="make plugin.yaml's path and the decorator's agree",
            )
        else:
            function_line = facts.functions[route.handler]
            found.error(
                "route-decorator",
                f"{where}: {route.handler} is defined on {entrypoint}:{function_line} but not "
                f"registered as a route, so {route.path} would not be served",
                file=entrypoint,
                line=function_line,
                fix=f"put {decorator} on the line above `def {route.handler}`",
            )
    for registration in facts.registrations:
        if registration.kind != "route" or registration.target is _UNKNOWN:
            continue
        if (registration.target, registration.function) in declared:
            continue
        if registration.public is True and registration.methods is not _UNKNOWN:
            found.public_routes += [f"{m} {registration.target}" for m in registration.methods]
        found.warning(
            "undeclared-route",
            f"{registration.function} serves {registration.target!r} but plugin.yaml does not "
            "declare the route",
            file=entrypoint,
            line=registration.line,
            fix=f"add to plugin.yaml's routes: `- path: {registration.target}` with "
            f"`handler: {registration.function}`",
        )


def _publicity(public: bool) -> str:
    return "public (no key needed)" if public else "private (a key is needed)"
