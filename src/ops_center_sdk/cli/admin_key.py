"""The dev host's admin key: ``OPS_CENTER_API_KEY``, else one generated once and saved.

The saved key lives in ``<data dir>/admin-key`` (by default
``.ops-center/data/admin-key`` in the working folder), readable by its owner
only (mode 0600), and is reused at every start. ``ops-center-plugin emit``
finds it there too.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

#: Where ``dev`` keeps its data unless ``--data-dir`` says otherwise (the same
#: folder a plugin served on its own keeps its storage in).
DEFAULT_DATA_DIR = Path(".ops-center") / "data"
KEY_FILE = "admin-key"
KEY_ENV = "OPS_CENTER_API_KEY"
URL_ENV = "OPS_CENTER_API_URL"


@dataclass(frozen=True)
class AdminKey:
    """The admin key and where it came from: ``env``, ``saved`` or ``generated``."""

    value: str
    origin: str
    path: Path | None = None


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def saved_admin_key(data_dir: Path) -> str | None:
    """The key saved in ``data_dir``, if there is one."""
    try:
        key = key_path(data_dir).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return key or None


def admin_key(data_dir: Path) -> AdminKey:
    """``OPS_CENTER_API_KEY`` if set; else the saved key; else a new one, saved (0600)."""
    from_env = os.environ.get(KEY_ENV, "").strip()
    if from_env:
        return AdminKey(from_env, "env")
    path = key_path(data_dir)
    saved = saved_admin_key(data_dir)
    if saved is not None:
        return AdminKey(saved, "saved", path)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "ocadmin_" + secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode is masked by the umask; this is not
    return AdminKey(key, "generated", path)
