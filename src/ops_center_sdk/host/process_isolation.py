"""What a plugin process is given: an environment, a data folder and a user of its own.

The host's own environment may hold anything (the admin key in
``OPS_CENTER_API_KEY``, cloud credentials, database passwords), so a plugin
process gets an allow-list of it (:data:`INHERITED`: locale, time zone,
``PATH``, Python's own settings) plus what is its own: its API key, protocol
secret, URLs, and ``HOME``/``OPS_CENTER_DATA_DIR`` set to its data folder
``<data>/plugins/<id>/``, where its storage lives (``storage.db``).

When the host runs as root, each installation gets a uid of its own
(:func:`allocate_uid`, remembered in the plugin's record) that owns that
folder (mode 0700); the host's data folder is then 0711 and its store 0600,
so no plugin user can list the data folder or read the store, another
plugin's folder or the host's key files, sandbox or not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..manifest import Manifest
from .sandbox import FIRST_PLUGIN_UID, LAST_PLUGIN_UID, ResourceLimits

#: Names of the host's environment a plugin process inherits (``LC_*`` too).
INHERITED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "PYTHONPATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONWARNINGS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "VIRTUAL_ENV",
    "OPS_CENTER_LOG_LEVEL",
    "OPS_CENTER_SERVER_LOG_LEVEL",
    "OPS_CENTER_PLUGIN_WORKERS",
)


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the host's environment a plugin process may see."""
    return {
        name: value
        for name, value in environ.items()
        if name in INHERITED or name.startswith("LC_")
    }


def allocate_uid(plugin_id: str, taken: Iterable[int]) -> int:
    """The lowest plugin uid no other installation holds."""
    used = set(taken)
    for uid in range(FIRST_PLUGIN_UID, LAST_PLUGIN_UID + 1):
        if uid not in used:
            return uid
    raise RuntimeError(f"no free plugin uid left for {plugin_id!r}")


def prepare_data_dir(root: Path, plugin_id: str, uid: int | None) -> Path:
    """``<root>/plugins/<id>``, made and, for a plugin user, owned by it alone."""
    folder = root / "plugins" / plugin_id
    folder.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        for path in (folder, *folder.rglob("*")):
            with contextlib.suppress(FileNotFoundError):
                os.chown(path, uid, uid, follow_symlinks=False)
        folder.chmod(0o700)
        # Walk-through only: a plugin user may reach its own folder, not list others.
        root.chmod(0o711)
        (root / "plugins").chmod(0o711)
    return folder


def lock_down_store(root: Path) -> None:
    """The host's own files in ``root``: readable by the host's user only."""
    for path in root.glob("ops-center.db*"):
        path.chmod(0o600)
    for path in root.glob("admin-key*"):
        path.chmod(0o600)


def limits_for(manifest: Manifest) -> ResourceLimits:
    """The process limits of the manifest's ``runtime.limits`` (defaults for what it omits)."""
    declared = manifest.runtime.limits
    if declared is None:
        return ResourceLimits()
    defaults = ResourceLimits()
    return ResourceLimits(
        memory_mb=declared.memory_mb if declared.memory_mb is not None else defaults.memory_mb,
        cpu_seconds=declared.cpu_seconds,
        open_files=declared.open_files if declared.open_files is not None else defaults.open_files,
    )
