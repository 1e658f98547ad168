"""The interface every storage backend implements.

A backend stores text values (the :class:`~ops_center_sdk.storage.Storage`
facade does the JSON encoding) under ``(namespace, key)``. A namespace is one
plugin's private key space: nothing a backend offers crosses namespaces, which
is how one plugin can never read another's data.

Times are seconds since the epoch as returned by the backend's ``clock``; an
entry whose ``expires_at`` is at or before ``clock()`` does not exist for any
operation.
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping

Clock = Callable[[], float]

_MAX_CHAR = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix``.

    ``None`` when there is none (the prefix is all U+10FFFF). Backends compare
    keys as UTF-8 bytes, which orders like code points.

    >>> prefix_upper_bound("device:")
    'device;'
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code <= _MAX_CHAR:
            return "".join(chars) + chr(code)
    return None


class StorageBackend(ABC):
    """Namespaced key-value store of JSON text with optional expiry."""

    #: True when other processes can open the same data (a server, a file), so
    #: that what they do must be coordinated through it: the scheduler then
    #: claims each run before starting it. False for process-local stores.
    shared: bool = False

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock

    @abstractmethod
    async def get(self, namespace: str, key: str) -> str | None:
        """The stored text, or ``None`` when the key is absent or expired."""

    @abstractmethod
    async def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, str]:
        """The stored text of each present key (absent keys are left out)."""

    @abstractmethod
    async def set(self, namespace: str, key: str, value: str, expires_at: float | None) -> None:
        """Store ``value``; durable when this returns (for durable backends)."""

    @abstractmethod
    async def set_many(
        self, namespace: str, items: Mapping[str, str], expires_at: float | None
    ) -> None:
        """Store every item atomically: all or none."""

    @abstractmethod
    async def delete(self, namespace: str, key: str) -> bool:
        """Remove a key; True when it existed."""

    @abstractmethod
    async def exists(self, namespace: str, key: str) -> bool:
        """True when the key is present and not expired."""

    @abstractmethod
    async def keys(self, namespace: str, prefix: str) -> list[str]:
        """Every live key starting with ``prefix`` (``""`` for all), sorted."""

    @abstractmethod
    async def clear(self, namespace: str) -> int:
        """Remove every key of the namespace; return how many were removed."""

    @abstractmethod
    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: str | None,
        value: str,
        expires_at: float | None,
    ) -> bool:
        """Atomically set ``value`` if the current text equals ``expected``.

        ``expected=None`` means "only if the key is absent".
        """

    @abstractmethod
    async def increment(
        self, namespace: str, key: str, amount: int | float, expires_at: float | None
    ) -> str:
        """Atomically add ``amount`` to a numeric value (absent counts as 0).

        Returns the new value's text. ``expires_at`` applies only when the key
        is created. Raises ``TypeError`` when the stored value is not a number.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections and files."""


def add_to_json_number(current: str | None, amount: int | float, key: str) -> str:
    """The JSON text of ``current + amount``; the arithmetic every backend's ``increment`` shares.

    ``current`` is the stored text (``None`` when absent, counted as 0). Doing the
    sum in Python keeps ints exact and the rules identical on every backend.

    >>> add_to_json_number("41", 1, "hits")
    '42'
    """
    number: object = 0 if current is None else json.loads(current)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise TypeError(
            f"cannot increment storage key {key!r}: it holds a JSON {_json_kind(number)}, "
            "not a number"
        )
    result = number + amount
    if isinstance(result, float) and not math.isfinite(result):
        raise ValueError(
            f"cannot increment storage key {key!r}: {number!r} + {amount!r} is not a finite number"
        )
    return json.dumps(result)


def _json_kind(value: object) -> str:
    kinds = {bool: "boolean", str: "string", list: "array", dict: "object", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)
