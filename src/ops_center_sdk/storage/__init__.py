"""Key-value storage for plugins: ``plugin.storage``.

:class:`Storage` is the API plugins use; it sits on a :class:`StorageBackend`
chosen by URL (:func:`open_backend`): :class:`MemoryStorage`,
:class:`SqliteStorage` (the embedded default) or :class:`RedisStorage`.

>>> storage = open_storage("my-plugin")  # SQLite under .ops-center/data
>>> await storage.set("key", {"data": "value"})
"""

from __future__ import annotations

from .base import StorageBackend
from .facade import JSON_NULL, Storage
from .memory import MemoryStorage
from .redis import RedisStorage
from .sqlite import SqliteStorage
from .urls import default_storage_url, open_backend, open_storage

__all__ = [
    "JSON_NULL",
    "MemoryStorage",
    "RedisStorage",
    "SqliteStorage",
    "Storage",
    "StorageBackend",
    "default_storage_url",
    "open_backend",
    "open_storage",
]
