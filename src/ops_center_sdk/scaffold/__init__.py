"""The plugin skeletons that ``ops-center-plugin init`` writes.

The files are templates shipped as package data (``templates/<kind>/*.tmpl``):
``common/`` for every plugin, plus one folder per plugin type (backend,
frontend, hybrid, container). ``{{placeholder}}`` marks a value; the
``_yaml``, ``_py`` and ``_html`` variants are the value quoted for that
language, so any name or description gives valid files.

>>> files = render_plugin(PluginAnswers("my-plugin", name="My Plugin"))
>>> sorted(files)[:3]
['.gitignore', 'README.md', 'config.yaml']
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from .. import __version__

PLUGIN_TYPES = ("backend", "frontend", "hybrid", "container")
CATEGORIES = ("monitoring", "ai", "security", "integration", "analytics")
TEMPLATE_SUFFIX = ".tmpl"
#: Template names that stand for dot-files (kept visible inside the package).
_RENAMED = {"gitignore": ".gitignore", "dockerignore": ".dockerignore"}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

_ABOUT_TYPE = {
    "backend": "It runs inside Ops-Center: hooks react to device events, routes serve JSON under "
    "`/plugins/{plugin_id}/`, and a scheduled task syncs every five minutes.",
    "frontend": "It adds a page to Ops-Center at `/plugins/{plugin_id}/` (the files in `ui/`) "
    "and the JSON that page shows.",
    "hybrid": "Hooks keep track of devices as Ops-Center creates and deletes them, and a page at "
    "`/plugins/{plugin_id}/` (the files in `ui/`) shows them.",
    "container": "It runs as its own service, in a container (see `Dockerfile`); Ops-Center "
    "delivers events to it over HTTP and proxies its routes under `/plugins/{plugin_id}/`.\n\n"
    "```bash\ndocker build -t {plugin_id} .\ndocker run -p 8000:8000 {plugin_id}\n```",
}
_EXTRA_FILES = {
    "backend": "",
    "frontend": "| `ui/` | the page (`index.html`) and its script (`app.js`) |\n",
    "hybrid": "| `ui/` | the page (`index.html`) and its script (`app.js`) |\n",
    "container": "| `Dockerfile` | the container image: `uvicorn main:app` on port 8000 |\n",
}


@dataclass(frozen=True)
class PluginAnswers:
    """What ``init`` asks: the plugin's id and its manifest's metadata."""

    plugin_id: str
    name: str = ""
    description: str = ""
    author: str = ""
    category: str = "monitoring"
    type: str = "backend"
    version: str = "1.0.0"

    @property
    def display_name(self) -> str:
        """``name``, or the id in title case when no name was given."""
        return self.name or self.plugin_id.replace("-", " ").title()


def default_name(plugin_id: str) -> str:
    """``my-plugin`` -> ``My Plugin``."""
    return plugin_id.replace("-", " ").title()


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when YAML reads it back unchanged, else quoted."""
    plain = value.strip() == value and "\n" not in value and value != ""
    if plain:
        try:
            plain = yaml.safe_load(f"key: {value}\n") == {"key": value}
        except yaml.YAMLError:
            plain = False
    return value if plain else json.dumps(value, ensure_ascii=False)


def python_string(value: str) -> str:
    """``value`` as a Python string literal, quoted the way ``ruff format`` would.

    JSON's escapes are a subset of Python's, so a JSON string is a Python one.
    """
    quoted = json.dumps(value, ensure_ascii=False)
    if '"' in value and "'" not in value:
        return "'" + quoted[1:-1].replace('\\"', '"') + "'"
    return quoted


def _docstring_text(value: str) -> str:
    text = " ".join(value.split()) or "an Ops-Center plugin."
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _settings_section(answers: PluginAnswers) -> str:
    from ..manifest import parse_manifest

    manifest = parse_manifest(_render_text("plugin.yaml", answers))
    schema = manifest.config_schema or {}
    rows = ["| setting | type | default | what it does |", "|---|---|---|---|"]
    for key, spec in (schema.get("properties") or {}).items():
        default = json.dumps(spec.get("default")) if "default" in spec else ""
        rows.append(
            f"| `{key}` | {spec.get('type', '')} | `{default}` | {spec.get('description', '')} |"
        )
    return "\n".join(rows) + "\n\nSet them in `config.yaml`; Ops-Center can override them."


def _values(answers: PluginAnswers) -> dict[str, str]:
    name = answers.display_name
    about = _ABOUT_TYPE[answers.type].format(plugin_id=answers.plugin_id)
    return {
        "plugin_id": answers.plugin_id,
        "version": answers.version,
        "category": answers.category,
        "type": answers.type,
        "name": name,
        "name_yaml": yaml_scalar(name),
        "name_py": python_string(name),
        "name_html": html.escape(name),
        "name_doc": _docstring_text(name),
        "description": answers.description or "An Ops-Center plugin.",
        "description_yaml": yaml_scalar(answers.description),
        "description_py": python_string(answers.description),
        "description_doc": _docstring_text(answers.description),
        "author": answers.author,
        "author_yaml": yaml_scalar(answers.author),
        "author_py": python_string(answers.author),
        "sdk_requirement": f"ops-center-plugin-sdk[test]>={__version__}",
        "about_type": about,
        "extra_files": _EXTRA_FILES[answers.type],
    }


def _templates(kind: str) -> dict[str, Traversable]:
    """Output path -> template, for ``common`` and one plugin type (the type's files win)."""
    root = resources.files(__package__).joinpath("templates")
    found: dict[str, Traversable] = {}
    for folder in ("common", kind):
        _collect(root.joinpath(folder), "", found)
    return found


def _collect(folder: Traversable, prefix: str, found: dict[str, Traversable]) -> None:
    for item in folder.iterdir():
        if item.is_dir():
            _collect(item, f"{prefix}{item.name}/", found)
        elif item.name.endswith(TEMPLATE_SUFFIX):
            name = item.name.removesuffix(TEMPLATE_SUFFIX)
            found[prefix + _RENAMED.get(name, name)] = item


def _fill(text: str, values: dict[str, str], source: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {source} uses an unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


def _render_text(path: str, answers: PluginAnswers) -> str:
    template = _templates(answers.type)[path]
    return _fill(template.read_text(encoding="utf-8"), _values(answers), path)


def render_plugin(answers: PluginAnswers) -> dict[str, str]:
    """Every file of the new plugin: relative path -> text."""
    if answers.type not in PLUGIN_TYPES:
        raise ValueError(f"unknown plugin type {answers.type!r}; use {', '.join(PLUGIN_TYPES)}")
    values = _values(answers)
    values["settings"] = _settings_section(answers)
    return {
        path: _fill(template.read_text(encoding="utf-8"), values, path)
        for path, template in sorted(_templates(answers.type).items())
    }


def create_plugin(folder: str | Path, answers: PluginAnswers) -> list[Path]:
    """Write a new plugin into ``folder``, which must not exist (or be an empty folder).

    The files are written into a temporary folder beside it, which is then
    renamed: an error leaves no half-made plugin behind. Returns the files.
    """
    target = Path(folder).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty; nothing was written")
    files = render_plugin(answers)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / relative for relative in files]
