"""The in-memory backend: a dict per namespace, gone when the process ends.

It is what ``memory://`` opens and what the testing kit's ``MockStorage`` runs
on, so tests exercise the real :class:`~ops_center_sdk.storage.Storage` code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from .base import Clock, StorageBackend, add_to_json_number

_Entry = tuple[str, float | None]


class MemoryStorage(StorageBackend):
    """Keeps every namespace in a process-local dict; nothing survives a restart.

    >>> backend = MemoryStorage()
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        self._spaces: dict[str, dict[str, _Entry]] = {}

    def _live(self, namespace: str, key: str) -> str | None:
        space = self._spaces.get(namespace)
        if space is None:
            return None
        entry = space.get(key)
        if entry is None:
            return None
        text, expires_at = entry
        if expires_at is not None and expires_at <= self.clock():
            del space[key]
            return None
        return text

    async def get(self, namespace: str, key: str) -> str | None:
        return self._live(namespace, key)

    async def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for key in keys:
            text = self._live(namespace, key)
            if text is not None:
                found[key] = text
        return found

    async def set(self, namespace: str, key: str, value: str, expires_at: float | None) -> None:
        self._spaces.setdefault(namespace, {})[key] = (value, expires_at)

    async def set_many(
        self, namespace: str, items: Mapping[str, str], expires_at: float | None
    ) -> None:
        space = self._spaces.setdefault(namespace, {})
        for key, value in items.items():
            space[key] = (value, expires_at)

    async def delete(self, namespace: str, key: str) -> bool:
        existed = self._live(namespace, key) is not None
        if existed:
            del self._spaces[namespace][key]
        return existed

    async def exists(self, namespace: str, key: str) -> bool:
        return self._live(namespace, key) is not None

    async def keys(self, namespace: str, prefix: str) -> list[str]:
        space = self._spaces.get(namespace, {})
        now = self.clock()
        expired = [k for k, (_, exp) in space.items() if exp is not None and exp <= now]
        for key in expired:
            del space[key]
        return sorted(key for key in space if key.startswith(prefix))

    async def clear(self, namespace: str) -> int:
        space = self._spaces.pop(namespace, {})
        now = self.clock()
        return sum(1 for _, exp in space.values() if exp is None or exp > now)

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: str | None,
        value: str,
        expires_at: float | None,
    ) -> bool:
        if self._live(namespace, key) != expected:
            return False
        self._spaces.setdefault(namespace, {})[key] = (value, expires_at)
        return True

    async def increment(
        self, namespace: str, key: str, amount: int | float, expires_at: float | None
    ) -> str:
        current = self._live(namespace, key)
        if current is not None:
            expires_at = self._spaces[namespace][key][1]
        text = add_to_json_number(current, amount, key)
        self._spaces.setdefault(namespace, {})[key] = (text, expires_at)
        return text
