"""Choosing a backend by URL, and where a plugin's data lives by default.

- ``memory://``: :class:`MemoryStorage`, gone when the process ends.
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the
  SQLAlchemy convention: the path is what follows the third slash):
  :class:`SqliteStorage`, the embedded default.
- ``redis://host:port/db`` (also ``rediss://``, ``unix://``): :class:`RedisStorage`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote, unquote

from ..errors import StorageError
from .base import Clock, StorageBackend
from .facade import Storage
from .memory import MemoryStorage
from .redis import RedisStorage, redact
from .sqlite import SqliteStorage

STORAGE_URL_ENV = "OPS_CENTER_STORAGE_URL"
DATA_DIR_ENV = "OPS_CENTER_DATA_DIR"
DEFAULT_DATA_DIR = "./.ops-center/data"

_URL_FORMS = "memory://, sqlite:///relative.db, sqlite:////absolute.db or redis://host:port/db"


def open_backend(url: str, *, clock: Clock = time.time) -> StorageBackend:
    """The backend a storage URL names; ``StorageError`` if the URL is not usable.

    >>> open_backend("sqlite:////var/lib/ops-center/storage.db")
    """
    if not isinstance(url, str):
        raise TypeError(f"storage URL must be a str, got {type(url).__name__}")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise StorageError(f"storage URL {redact(url)!r} has no scheme; use {_URL_FORMS}")
    if scheme == "memory":
        if rest:
            raise StorageError(f"storage URL {url!r}: memory:// takes nothing after '//'")
        return MemoryStorage(clock=clock)
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) == 1:
            raise StorageError(
                f"storage URL {url!r} has no file path; "
                "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        if "?" in rest:
            raise StorageError(f"storage URL {url!r}: sqlite URLs take no options")
        return SqliteStorage(unquote(rest[1:]), clock=clock)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStorage(url, clock=clock)
    raise StorageError(
        f"unknown storage URL scheme {scheme!r} in {redact(url)!r}; use {_URL_FORMS}"
    )


def default_storage_url(plugin_id: str) -> str:
    """The storage URL of a plugin: ``$OPS_CENTER_STORAGE_URL`` if set, else its SQLite file.

    The file is ``$OPS_CENTER_DATA_DIR`` (default ``./.ops-center/data``, taken
    as an absolute path now) ``/plugins/<plugin_id>/storage.db``.

    >>> default_storage_url("my-plugin")
    'sqlite:////home/me/project/.ops-center/data/plugins/my-plugin/storage.db'
    """
    _check_plugin_id(plugin_id)
    url = os.environ.get(STORAGE_URL_ENV)
    if url:
        return url
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    path = (data_dir / "plugins" / plugin_id / "storage.db").absolute()
    return "sqlite:///" + quote(path.as_posix(), safe="/:")


def open_storage(plugin_id: str, url: str | None = None, *, clock: Clock = time.time) -> Storage:
    """The :class:`Storage` of a plugin, on ``url`` or its :func:`default_storage_url`.

    >>> storage = open_storage("my-plugin", "memory://")
    """
    _check_plugin_id(plugin_id)
    backend = open_backend(default_storage_url(plugin_id) if url is None else url, clock=clock)
    return Storage(backend, plugin_id)


def _check_plugin_id(plugin_id: object) -> None:
    """A plugin id names a folder, so it must be one plain path segment."""
    if not isinstance(plugin_id, str):
        raise TypeError(f"plugin id must be a str, got {type(plugin_id).__name__}")
    if plugin_id in ("", ".", "..") or any(sep in plugin_id for sep in ("/", "\\", "\x00")):
        raise ValueError(f"plugin id {plugin_id!r} cannot name a storage folder")
