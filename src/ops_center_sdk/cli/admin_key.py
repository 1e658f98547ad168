"""The dev host's admin key: ``OPS_CENTER_API_KEY``, else one generated once and kept for you.

The admin key grants everything, so it is never written where a plugin could
read it: not in the data folder (which plugin processes share a parent
with), but in the user's own configuration folder, one file per data folder:
``~/.config/ops-center/dev-keys/<digest of the data folder's path>``
(``$XDG_CONFIG_HOME`` and ``$OPS_CENTER_CONFIG_DIR`` move it), readable by
its owner only (mode 0600). Plugin processes never see that folder (the
sandbox shows them only their own folders; run as root, they run as users
of their own). ``dev`` prints a generated key once; ``emit`` and ``publish``
find it there for a host on this machine. A key that an earlier version
saved in clear in ``<data dir>/admin-key`` is moved there at the next start.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

#: Where ``dev`` keeps its data unless ``--data-dir`` says otherwise (the same
#: folder a plugin served on its own keeps its storage in).
DEFAULT_DATA_DIR = Path(".ops-center") / "data"
#: Where earlier versions kept the key, in clear, inside the data folder.
LEGACY_KEY_FILE = "admin-key"
KEY_ENV = "OPS_CENTER_API_KEY"
URL_ENV = "OPS_CENTER_API_URL"
CONFIG_DIR_ENV = "OPS_CENTER_CONFIG_DIR"


@dataclass(frozen=True)
class AdminKey:
    """The admin key and where it came from: ``env``, ``saved`` or ``generated``."""

    value: str
    origin: str
    path: Path | None = None


def config_dir() -> Path:
    """``$OPS_CENTER_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/ops-center``, else ``~/.config/...``."""
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ops-center"


def key_path(data_dir: Path) -> Path:
    """The file that keeps the admin key of the dev host whose data is in ``data_dir``."""
    digest = hashlib.sha256(str(Path(data_dir).absolute()).encode("utf-8")).hexdigest()[:24]
    return config_dir() / "dev-keys" / digest


def saved_admin_key(data_dir: Path) -> str | None:
    """The key kept for the dev host of ``data_dir``, if there is one."""
    try:
        lines = key_path(data_dir).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    key = lines[0].strip() if lines else ""
    return key or None


def admin_key(data_dir: Path) -> AdminKey:
    """``OPS_CENTER_API_KEY`` if set; else the kept key; else a new one, kept (0600)."""
    from_env = os.environ.get(KEY_ENV, "").strip()
    legacy = Path(data_dir) / LEGACY_KEY_FILE
    if from_env:
        _forget_legacy(legacy, data_dir, keep=False)
        return AdminKey(from_env, "env")
    _forget_legacy(legacy, data_dir, keep=True)
    path = key_path(data_dir)
    saved = saved_admin_key(data_dir)
    if saved is not None:
        return AdminKey(saved, "saved", path)
    key = "ocadmin_" + secrets.token_urlsafe(24)
    _keep(path, key, data_dir)
    return AdminKey(key, "generated", path)


def _keep(path: Path, key: str, data_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(f"{key}\n# admin key of the Ops-Center dev host with data in {data_dir}\n")
    os.chmod(path, 0o600)  # O_CREAT's mode is masked by the umask; this is not


def _forget_legacy(legacy: Path, data_dir: Path, *, keep: bool) -> None:
    """Move a key saved in clear in the data folder out of it (or just delete it)."""
    try:
        old = legacy.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    if keep and old and saved_admin_key(data_dir) is None:
        _keep(key_path(data_dir), old, data_dir)
    legacy.unlink(missing_ok=True)
