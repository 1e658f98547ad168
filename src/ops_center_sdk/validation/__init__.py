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

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, ManifestError
from .api_calls import check_api_calls
from .entrypoint import (
    EntrypointFacts,
    check_hooks,
    check_plugin_object,
    check_routes,
    parse_module,
)
from .findings import CONFIG_FILE, MANIFEST_FILE, Finding, Findings, Severity, ValidationReport

if TYPE_CHECKING:
    from ..manifest import Manifest
    from ..yaml_source import LineMap

__all__ = ["Finding", "Severity", "ValidationReport", "validate_plugin"]


def validate_plugin(folder: str | Path = ".") -> ValidationReport:
    """Check the plugin in ``folder`` statically; see the module's docstring for the checks."""
    from ..manifest import load_manifest

    root = Path(folder).resolve()
    found = Findings(root)
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
        module = parse_module(entry_file, entrypoint, found)
        if module is not None:
            facts = EntrypointFacts.read(module)
            check_plugin_object(facts, manifest, entrypoint, found)
            check_hooks(facts, manifest, lines, entrypoint, found)
            check_routes(facts, manifest, lines, entrypoint, found)
    check_api_calls(root, manifest, lines, found)
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


def _manifest_lines(root: Path) -> LineMap:
    from ..yaml_source import EMPTY_LINE_MAP, load_yaml_with_lines

    try:
        text = (root / MANIFEST_FILE).read_text(encoding="utf-8")
        return load_yaml_with_lines(text, MANIFEST_FILE)[1]
    except Exception:  # the manifest loaded a moment ago; lines are a nicety
        return EMPTY_LINE_MAP


def _check_readme(root: Path, found: Findings) -> None:
    if any(p.is_file() and p.name.upper().startswith("README") for p in root.iterdir()):
        return
    found.error(
        "missing-file",
        "the plugin has no README",
        file="README.md",
        fix="add README.md saying what the plugin does, its settings and permissions",
    )


def _check_config(root: Path, manifest: Manifest, found: Findings) -> None:
    from ..config import Config

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
