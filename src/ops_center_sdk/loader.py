"""Loading a plugin from its folder: plugin.yaml, then the entrypoint module.

Shared by everything that runs a plugin someone wrote (``serve``, the dev
host, the testing kit), so they all agree on what a plugin folder is: a
``plugin.yaml`` and its entrypoint, or only a ``main.py`` whose ``Plugin(...)``
declares the manifest (id, name, version, permissions...); ``init`` writes
the full plugin.yaml that hooks, routes and the runtime are declared in.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import CodeType, ModuleType
from typing import TYPE_CHECKING

from .errors import OpsCenterError

if TYPE_CHECKING:
    from .manifest import Manifest
    from .plugin import Plugin


class PluginLoadError(OpsCenterError):
    """The plugin's entrypoint is missing, raises on import, or defines no plugin."""


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin folder brought into this process."""

    folder: Path
    manifest: Manifest
    module: ModuleType
    plugin: Plugin
    #: True when the folder has no plugin.yaml: the manifest is the constructor's.
    manifest_from_code: bool = False


def module_name_for(plugin_id: str) -> str:
    """The name the entrypoint is imported under: unique per plugin id."""
    return "ops_center_plugins." + re.sub(r"[^0-9a-zA-Z_]", "_", plugin_id)


def load_plugin(
    folder: str | Path, *, fresh: bool = False, module: ModuleType | None = None
) -> LoadedPlugin:
    """Import the plugin in ``folder`` and return its ``Plugin`` object.

    The entrypoint (``runtime.entrypoint``, ``main.py`` by default) is imported
    as ``ops_center_plugins.<id>`` with the folder on ``sys.path`` so its own
    helper modules import. ``fresh=True`` imports it again even if loaded;
    ``module`` uses a module already imported from the entrypoint instead.

    A folder without plugin.yaml but with a ``main.py`` is loaded too: the
    plugin's manifest is then what ``Plugin(...)`` declares
    (``manifest_from_code``).
    """
    from .manifest import MANIFEST_FILE, load_manifest

    root = Path(folder).resolve()
    if not (root / MANIFEST_FILE).is_file() and (root / CODE_ONLY_ENTRYPOINT).is_file():
        return _load_code_only(root, fresh=fresh, module=module)
    manifest = load_manifest(root)
    entry = root / (manifest.runtime.entrypoint if manifest.runtime else "main.py")
    if not entry.is_file():
        raise PluginLoadError(f"{entry}: the entrypoint named in plugin.yaml does not exist")
    module = module or _module_of(module_name_for(manifest.id), entry, root, fresh=fresh)
    plugin = _plugin_in(module, entry)
    if plugin.id != manifest.id:
        raise PluginLoadError(
            f"{entry}: Plugin(id={plugin.id!r}) does not match plugin.yaml id {manifest.id!r}"
        )
    return LoadedPlugin(root, manifest, module, plugin)


#: The entrypoint of a folder without plugin.yaml.
CODE_ONLY_ENTRYPOINT = "main.py"


def code_only_note(folder: Path) -> str:
    """What ``serve`` and ``dev`` print for a folder without plugin.yaml."""
    return (
        f"note: {folder} has no plugin.yaml: the manifest comes from Plugin(...) in "
        f"{CODE_ONLY_ENTRYPOINT}; `ops-center-plugin init` writes a full plugin.yaml "
        "(permissions, hooks, routes, config schema, runtime)"
    )


def _load_code_only(root: Path, *, fresh: bool, module: ModuleType | None) -> LoadedPlugin:
    """A folder with only ``main.py``: the plugin's manifest is its constructor's."""
    entry = root / CODE_ONLY_ENTRYPOINT
    module = module or _module_of(module_name_for(root.name), entry, root, fresh=fresh)
    plugin = _plugin_in(module, entry)
    # Known by its id too, as a plugin with a plugin.yaml is.
    sys.modules[module_name_for(plugin.id)] = module
    return LoadedPlugin(root, plugin.manifest, module, plugin, manifest_from_code=True)


def _module_of(name: str, entry: Path, root: Path, *, fresh: bool) -> ModuleType:
    """The entrypoint's module: the one imported already, unless ``fresh``."""
    known = sys.modules.get(name)
    if not fresh and known is not None and getattr(known, "__file__", None) == str(entry):
        return known
    return _import_file(name, entry, root)


def _plugin_in(module: ModuleType, entry: Path) -> Plugin:
    """The module's ``plugin``, else its one ``Plugin`` at module level."""
    from .plugin import Plugin

    plugin = getattr(module, "plugin", None)
    if isinstance(plugin, Plugin):
        return plugin
    candidates = [value for value in vars(module).values() if isinstance(value, Plugin)]
    if len(candidates) != 1:
        raise PluginLoadError(
            f"{entry}: expected one `plugin = Plugin(...)` at module level, found {len(candidates)}"
        )
    return candidates[0]


class SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles a plugin's module from its source every time, never from ``__pycache__``.

    Python trusts a cached ``.pyc`` when the source's size and modification
    second match; a plugin file saved twice within one second with the same
    size (an edit under ``dev``) would otherwise run its old code after a
    reload. Plugin modules are small: compiling them costs little.
    """

    def get_code(self, fullname: str) -> CodeType:
        return self.source_to_code(self.get_data(self.path), self.path)


class PluginSourceFinder(importlib.abc.MetaPathFinder):
    """Gives the modules inside plugin folders a :class:`SourceOnlyLoader`."""

    def __init__(self) -> None:
        self.roots: set[Path] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        origin = Path(spec.origin).resolve()
        if not any(origin.is_relative_to(root) for root in self.roots):
            return None
        if {"site-packages", "dist-packages"} & set(origin.parts):
            return None  # installed packages (a virtualenv inside the plugin folder) keep theirs
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=SourceOnlyLoader(fullname, spec.origin),
            submodule_search_locations=spec.submodule_search_locations,
        )


_plugin_sources = PluginSourceFinder()


def _read_sources_of(root: Path) -> None:
    """Import the modules under ``root`` from their source (see :class:`SourceOnlyLoader`)."""
    _plugin_sources.roots.add(root)
    if _plugin_sources not in sys.meta_path:
        sys.meta_path.insert(0, _plugin_sources)


def _import_file(name: str, entry: Path, root: Path) -> ModuleType:
    if "ops_center_plugins" not in sys.modules:
        namespace = ModuleType("ops_center_plugins")
        namespace.__path__ = []
        sys.modules["ops_center_plugins"] = namespace
    loader = SourceOnlyLoader(name, str(entry))
    spec = importlib.util.spec_from_file_location(name, entry, loader=loader)
    if spec is None or spec.loader is None:
        raise PluginLoadError(f"{entry}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(root)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    _read_sources_of(root)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PluginLoadError(_describe_import_failure(entry, exc)) from exc
    return module


def _describe_import_failure(entry: Path, exc: BaseException) -> str:
    """``main.py:12: ValueError: ...``: the deepest frame inside the plugin folder."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if Path(f.filename).resolve().is_relative_to(entry.parent)]
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    elif inside:
        where = f"{inside[-1].filename}:{inside[-1].lineno}"
    else:
        where = str(entry)
    return f"{where}: importing the plugin failed: {type(exc).__name__}: {exc}"
