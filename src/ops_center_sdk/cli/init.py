"""``ops-center-plugin init NAME``: create a new plugin folder from a skeleton."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .output import Output, is_interactive

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(args: argparse.Namespace) -> int:
    """Create the plugin named ``args.folder``; ask for what is missing on a terminal."""
    from ..errors import ManifestError
    from ..manifest import PluginMetadata
    from ..scaffold import CATEGORIES, PLUGIN_TYPES, PluginAnswers, create_plugin, default_name

    output = Output()
    folder = Path(args.folder)
    plugin_id = folder.resolve().name if str(args.folder) in (".", "") else folder.name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        output.error(
            f"{folder} already exists; nothing was written",
            hint="choose another name, or remove the folder first",
        )
        return EXIT_FAILED
    ask = is_interactive() and not args.no_input
    name = args.name
    if name is None:
        name = _prompt("Name", default_name(plugin_id)) if ask else default_name(plugin_id)
    description = args.description
    if description is None:
        description = _prompt("Description", "") if ask else ""
    author = args.author
    if author is None:
        author = _prompt("Author", "") if ask else ""
    category = args.category or (
        _choose("Category", CATEGORIES, "monitoring") if ask else "monitoring"
    )
    plugin_type = args.type or (_choose("Type", PLUGIN_TYPES, "backend") if ask else "backend")
    version = args.version
    if version is None:
        version = _prompt("Version", "1.0.0") if ask else "1.0.0"
    answers = PluginAnswers(plugin_id, name, description, author, category, plugin_type, version)
    try:
        PluginMetadata.from_dict(
            {
                "id": plugin_id,
                "name": answers.display_name,
                "version": version,
                "description": description,
                "author": author,
                "category": category,
                "type": plugin_type,
            },
            source="init",
        )
    except ManifestError as exc:
        for problem in exc.problems:
            option = "NAME" if problem.path == "id" else f"--{problem.path}"
            output.error(f"{option}: {problem.message}")
        return EXIT_USAGE
    try:
        files = create_plugin(folder, answers)
    except FileExistsError as exc:
        output.error(str(exc))
        return EXIT_FAILED
    except OSError as exc:
        output.error(f"cannot create {folder}: {exc.strerror or exc}")
        return EXIT_FAILED
    root = folder.resolve()
    shown = os.path.relpath(root) if not folder.is_absolute() else str(root)
    output.success(f"created {shown}/: the {plugin_type} plugin {plugin_id} {version}")
    for path in files:
        output.line(f"  {path.relative_to(root).as_posix()}")
    output.line()
    output.line("Next:")
    for step in (
        f"cd {shown}",
        "pip install -r requirements.txt",
        "pytest                          # its tests",
        "ops-center-plugin dev           # run it in a local Ops-Center",
        "ops-center-plugin validate",
        "ops-center-plugin build",
    ):
        output.line(f"  {step}")
    return EXIT_OK


def _prompt(label: str, default: str) -> str:
    shown = f" [{default}]" if default else ""
    answer = input(f"{label}{shown}: ").strip()
    return answer or default


def _choose(label: str, choices: tuple[str, ...], default: str) -> str:
    while True:
        answer = _prompt(f"{label} ({', '.join(choices)})", default)
        if answer in choices:
            return answer
        print(f"  choose one of: {', '.join(choices)}")
