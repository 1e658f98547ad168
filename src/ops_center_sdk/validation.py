"""The static validator behind ``ops-center-plugin validate`` (and the host's checks).

>>> report = validate_plugin("my-plugin")          # doctest: +SKIP
>>> report.valid, [str(finding) for finding in report.findings]

It reads the plugin's files and never runs its code: the entrypoint and its
helper modules are parsed with :mod:`ast`. Checks:

- ``plugin.yaml`` follows the manifest's rules (each problem with its line);
- the required files exist: the entrypoint and a README;
- every hook and route ``plugin.yaml`` names has a function in the
  entrypoint, registered with a decorator that agrees (event and priority,
  path and methods); a handler registered in code but missing from
  ``plugin.yaml`` is a warning;
- ``Plugin(id=..., version=...)`` in the code agrees with ``plugin.yaml``;
- the permissions cover each ``plugin.api.<resource>.<call>(...)`` the code
  makes (the finding names the call, its line and the missing permission);
- ``config.yaml`` satisfies ``config_schema``.

Each :class:`Finding` names the file, the line where known, what is wrong and
how to fix it. Errors make a plugin invalid; warnings do not.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError, ManifestError, Problem

if TYPE_CHECKING:
    from .manifest import Manifest
    from .yaml_source import LineMap

Severity = Literal["error", "warning"]

MANIFEST_FILE = "plugin.yaml"
CONFIG_FILE = "config.yaml"
DEFAULT_PRIORITY = 10
_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "dist", "tests", "test", ".ops-center"}
)


@dataclass(frozen=True)
class Finding:
    """One thing ``validate`` found: where, what, and how to fix it."""

    severity: Severity
    code: str
    """A stable word for scripts: ``manifest``, ``missing-file``, ``hook-handler``..."""
    message: str
    file: str | None = None
    """The file, relative to the plugin folder (``plugin.yaml``, ``main.py``)."""
    line: int | None = None
    fix: str | None = None

    @property
    def location(self) -> str:
        """``main.py:12``, ``plugin.yaml`` or empty."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.severity}: {where}{self.message}{fix}"


@dataclass(frozen=True)
class ValidationReport:
    """Everything found in one plugin folder."""

    folder: Path
    findings: tuple[Finding, ...]
    plugin_id: str | None = None
    version: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``validate --json`` prints)."""
        return {
            "valid": self.valid,
            "path": str(self.folder),
            "plugin": {"id": self.plugin_id, "version": self.version} if self.plugin_id else None,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [finding.to_dict() for finding in self.findings],
        }


def validate_plugin(folder: str | Path = ".") -> ValidationReport:
    """Check the plugin in ``folder`` statically; see the module's docstring for the checks."""
    from .manifest import load_manifest

    root = Path(folder).resolve()
    found = _Findings(root)
    if not root.is_dir():
        found.error(
            "missing-folder",
            f"{root} is not a folder",
            fix="give the plugin's folder, or run `ops-center-plugin init NAME` to create one",
        )
        return found.report()
    try:
        manifest = load_manifest(root)
    except ManifestError as exc:
        for problem in exc.problems:
            found.add_manifest_problem(problem)
        _check_readme(root, found)
        return found.report()
    found.plugin_id, found.version = manifest.id, manifest.version
    lines = _manifest_lines(root)
    _check_readme(root, found)
    entrypoint = manifest.runtime.entrypoint
    entry_file = root / entrypoint
    if not entry_file.is_file():
        found.error(
            "missing-file",
            f"the entrypoint {entrypoint} does not exist",
            file=MANIFEST_FILE,
            line=lines.line_of(("runtime", "entrypoint")),
            fix=f"create {entrypoint} with `plugin = Plugin(...)`, or point runtime.entrypoint "
            "at the plugin's module",
        )
    else:
        module = _parse(entry_file, entrypoint, found)
        if module is not None:
            facts = _EntrypointFacts.read(module)
            _check_plugin_object(facts, manifest, entrypoint, found)
            _check_hooks(facts, manifest, lines, entrypoint, found)
            _check_routes(facts, manifest, lines, entrypoint, found)
    _check_api_calls(root, manifest, lines, found)
    _check_config(root, manifest, found)
    if manifest.type == "container" and not (root / "Dockerfile").is_file():
        found.warning(
            "missing-file",
            "a container plugin has no Dockerfile",
            file=MANIFEST_FILE,
            line=lines.line_of(("type",)),
            fix="add a Dockerfile that runs `uvicorn main:app` (see `ops-center-plugin init "
            "--type container`)",
        )
    return found.report()


# ==================== collecting findings ====================


@dataclass
class _Findings:
    root: Path
    items: list[Finding] = field(default_factory=list)
    plugin_id: str | None = None
    version: str | None = None

    def error(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.items.append(Finding("error", code, message, file, line, fix))

    def warning(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.items.append(Finding("warning", code, message, file, line, fix))

    def relative(self, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path

    def add_manifest_problem(self, problem: Problem) -> None:
        file = self.relative(problem.file) or MANIFEST_FILE
        field_name = f"{problem.path}: " if problem.path else ""
        self.error(
            "manifest",
            f"{field_name}{problem.message}",
            file=file,
            line=problem.line,
            fix=_manifest_fix(problem, file),
        )

    def report(self) -> ValidationReport:
        ordered = sorted(
            self.items,
            key=lambda f: (f.severity != "error", f.file or "", f.line or 0),
        )
        return ValidationReport(self.root, tuple(ordered), self.plugin_id, self.version)


def _manifest_fix(problem: Problem, file: str) -> str:
    where = f"line {problem.line} of {file}" if problem.line else file
    message = problem.message
    if "did you mean" in message:
        suggestion = message.split("did you mean", 1)[1].split("?", 1)[0].strip()
        return f"use {suggestion} on {where}"
    if message == "is required":
        return f"add `{problem.path}: ...` to {file}"
    if message.startswith("unknown field"):
        return f"remove or rename `{problem.path}` on {where}"
    if message.startswith("invalid YAML"):
        return f"fix the YAML syntax on {where}"
    if problem.path:
        return f"change `{problem.path}` on {where} as the message says"
    return f"correct {where}"


def _manifest_lines(root: Path) -> LineMap:
    from .yaml_source import EMPTY_LINE_MAP, load_yaml_with_lines

    try:
        text = (root / MANIFEST_FILE).read_text(encoding="utf-8")
        return load_yaml_with_lines(text, MANIFEST_FILE)[1]
    except Exception:  # the manifest loaded a moment ago; lines are a nicety
        return EMPTY_LINE_MAP


def _check_readme(root: Path, found: _Findings) -> None:
    if any(p.is_file() and p.name.upper().startswith("README") for p in root.iterdir()):
        return
    found.error(
        "missing-file",
        "the plugin has no README",
        file="README.md",
        fix="add README.md saying what the plugin does, its settings and permissions",
    )


def _parse(path: Path, shown: str, found: _Findings) -> ast.Module | None:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        found.error("unreadable", f"cannot read {shown}: {exc}", file=shown)
        return None
    try:
        return ast.parse(source, filename=shown)
    except SyntaxError as exc:
        found.error(
            "syntax",
            f"Python syntax error: {exc.msg}",
            file=shown,
            line=exc.lineno,
            fix=f"correct the syntax on line {exc.lineno} of {shown}",
        )
        return None


# ==================== what the entrypoint declares ====================

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


@dataclass
class _EntrypointFacts:
    plugin_names: set[str]
    plugin_call: ast.Call | None
    functions: dict[str, int]  # module-level function name -> line
    other_names: set[str]  # module-level names bound otherwise (imports, assignments)
    registrations: list[_Registration]
    exports_app: bool

    @classmethod
    def read(cls, module: ast.Module) -> _EntrypointFacts:
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
        return _dotted(func.value) in modules
    return False


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
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


def _registrations(
    node: ast.FunctionDef | ast.AsyncFunctionDef, receivers: set[str]
) -> Iterator[_Registration]:
    for decorator in node.decorator_list:
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            continue
        kind = decorator.func.attr
        if kind not in ("hook", "filter_hook", "route"):
            continue
        if _dotted(decorator.func.value) not in receivers:
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
            )
        else:
            target = _literal(_argument(decorator, 0, "event" if kind == "hook" else "name"))
            priority = _literal(_argument(decorator, 1, "priority"), default=DEFAULT_PRIORITY)
            yield _Registration(kind, node.name, decorator.lineno, target, priority=priority)


# ==================== entrypoint vs plugin.yaml ====================


def _check_plugin_object(
    facts: _EntrypointFacts, manifest: Manifest, entrypoint: str, found: _Findings
) -> None:
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


def _not_defined(
    handler: str, what: str, facts: _EntrypointFacts, entrypoint: str
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


def _check_hooks(
    facts: _EntrypointFacts, manifest: Manifest, lines: LineMap, entrypoint: str, found: _Findings
) -> None:
    from .events import FILTER_CATALOG

    receiver = sorted(facts.plugin_names)[0] if facts.plugin_names else "plugin"
    declared: set[tuple[str, str, str]] = set()
    for index, hook in enumerate(manifest.hooks):
        kind = "filter_hook" if hook.event in FILTER_CATALOG else "hook"
        declared.add((kind, hook.event, hook.handler))
        where = f"hooks[{index}]"
        line = lines.line_of(("hooks", index, "handler"))
        decorator = f'@{receiver}.{kind}("{hook.event}")'
        if hook.handler not in facts.functions:
            if hook.handler in facts.other_names:
                found.warning(
                    "hook-handler",
                    f"{where}: {hook.handler!r} is imported or assigned in {entrypoint}, not "
                    "defined there, so its registration cannot be checked",
                    file=MANIFEST_FILE,
                    line=line,
                    fix=f"define the handler in {entrypoint} with {decorator}",
                )
                continue
            message, fix = _not_defined(hook.handler, where, facts, entrypoint)
            found.error("hook-handler", message, file=MANIFEST_FILE, line=line, fix=fix)
            continue
        mine = [
            r
            for r in facts.registrations
            if r.function == hook.handler and r.kind in ("hook", "filter_hook")
        ]
        if any(r.target is _UNKNOWN for r in mine):
            continue
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


def _check_routes(
    facts: _EntrypointFacts, manifest: Manifest, lines: LineMap, entrypoint: str, found: _Findings
) -> None:
    receiver = sorted(facts.plugin_names)[0] if facts.plugin_names else "plugin"
    declared: set[tuple[str, str]] = set()
    for index, route in enumerate(manifest.routes):
        declared.add((route.path, route.handler))
        where = f"routes[{index}]"
        methods = tuple(sorted(set(route.methods)))
        shown_methods = ", ".join(f'"{m}"' for m in methods)
        decorator = f'@{receiver}.route("{route.path}", methods=[{shown_methods}])'
        line = lines.line_of(("routes", index, "handler"))
        if route.handler not in facts.functions:
            if route.handler in facts.other_names:
                found.warning(
                    "route-handler",
                    f"{where}: {route.handler!r} is imported or assigned in {entrypoint}, not "
                    "defined there, so its registration cannot be checked",
                    file=MANIFEST_FILE,
                    line=line,
                    fix=f"define the handler in {entrypoint} with {decorator}",
                )
                continue
            message, fix = _not_defined(route.handler, where, facts, entrypoint)
            found.error("route-handler", message, file=MANIFEST_FILE, line=line, fix=fix)
            continue
        mine = [r for r in facts.registrations if r.function == route.handler and r.kind == "route"]
        if any(r.target is _UNKNOWN for r in mine):
            continue
        same_path = [r for r in mine if r.target == route.path]
        if same_path:
            registered = same_path[0]
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
        found.warning(
            "undeclared-route",
            f"{registration.function} serves {registration.target!r} but plugin.yaml does not "
            "declare the route",
            file=entrypoint,
            line=registration.line,
            fix=f"add to plugin.yaml's routes: `- path: {registration.target}` with "
            f"`handler: {registration.function}`",
        )


# ==================== permissions ====================


def _api_calls() -> dict[str, dict[str, str]]:
    """``{resource: {call: permission}}`` for every call ``plugin.api`` offers."""
    from .api import resources
    from .permissions import REQUIRED_PERMISSION

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
            chain = _dotted(node.value).split(".")
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


def _check_api_calls(root: Path, manifest: Manifest, lines: LineMap, found: _Findings) -> None:
    table = _api_calls()
    granted = manifest.permissions
    needed: dict[str, _APICall] = {}
    for path in _python_files(root, manifest.runtime.entrypoint):
        if not path.is_file():
            continue
        shown = path.relative_to(root).as_posix()
        try:
            module = ast.parse(path.read_text(encoding="utf-8"), filename=shown)
        except (SyntaxError, UnicodeDecodeError, OSError):
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


# ==================== config.yaml ====================


def _check_config(root: Path, manifest: Manifest, found: _Findings) -> None:
    from .config import Config

    path = root / CONFIG_FILE
    if not path.is_file():
        return
    try:
        config = Config(schema=manifest.config_schema, path=path, source_name=CONFIG_FILE)
    except ConfigError as exc:
        for problem in exc.problems:
            key = f"{problem.path}: " if problem.path else ""
            fix = (
                f"change `{problem.path}` in config.yaml to a value config_schema allows, or "
                "remove it to use the default"
                if problem.path
                else "correct config.yaml"
            )
            found.error(
                "config",
                f"{key}{problem.message}",
                file=found.relative(problem.file) or CONFIG_FILE,
                line=problem.line,
                fix=fix,
            )
        return
    try:
        config.check_complete()
    except ConfigError as exc:
        for problem in exc.problems:
            found.warning(
                "config-required",
                f"{problem.path}: {problem.message}",
                file=CONFIG_FILE,
                fix=f"set `{problem.path}` in config.yaml, or have the host set it at install",
            )
