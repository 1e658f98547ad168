"""Where an install path points: the plugin folder, or the 422 saying why there is none.

An install path comes from the caller (``POST /api/v1/plugins``, ``dev``,
``serve``), so it may be anything: a folder that does not exist, a name
longer than the filesystem allows, a NUL byte, ``~someone`` for a user this
machine does not have. Each is answered ``invalid_path`` naming the path,
never an unexpected error.
"""

from __future__ import annotations

from pathlib import Path

from ..manifest import MANIFEST_FILE
from .plugin_errors import PluginProblem

#: The most characters of a path an error message repeats.
SHOWN_CHARACTERS = 200


def plugin_folder(path: str | Path) -> Path:
    """The folder ``path`` names, resolved (``~`` expanded; a plugin.yaml stands for its folder).

    Raises :class:`PluginProblem` ``invalid_path`` (422) when no folder is there,
    or when the operating system refuses the path itself.
    """
    why = ""
    try:
        folder = Path(path).expanduser()
        if folder.name == MANIFEST_FILE and folder.is_file():
            folder = folder.parent
        if folder.is_dir():
            return folder.resolve()
    except OSError as exc:
        why = f": {exc.strerror or exc}"
    except (RuntimeError, ValueError) as exc:  # "~nobody", or a NUL byte
        why = f": {exc}"
    message = f"no plugin folder at {shown(path)} (on the host's machine){why}"
    raise PluginProblem(
        "invalid_path",
        message,
        details=[{"field": "body.path", "message": message, "type": "path"}],
    )


def shown(path: str | Path) -> str:
    """``path`` quoted for a message, cut to :data:`SHOWN_CHARACTERS` when longer."""
    text = str(path)
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:SHOWN_CHARACTERS]!r}... ({len(text)} characters)"
