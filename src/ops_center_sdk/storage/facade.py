"""The storage API a plugin uses as ``plugin.storage``.

:class:`Storage` checks keys and values, encodes values to JSON text and
decodes them back, then hands text to a :class:`StorageBackend` under the
plugin's namespace. Every rule about keys, values and patterns lives here, so
every backend behaves the same.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from fnmatch import translate
from types import TracebackType
from typing import Any, Final

from ..errors import StorageError
from .base import StorageBackend

Ttl = float | timedelta | None


class _JsonNullType:
    """The type of :data:`JSON_NULL`."""

    _instance: _JsonNullType | None = None

    def __new__(cls) -> _JsonNullType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "JSON_NULL"


JSON_NULL: Final = _JsonNullType()
"""``expected`` for :meth:`Storage.compare_and_set` meaning "the key holds JSON null".

``expected=None`` means "the key is absent", the common case (take a lock,
create once); pass ``JSON_NULL`` to match a key whose stored value is ``None``.
"""

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_DECODE = json.JSONDecoder().decode
_WILDCARD = re.compile(r"[*?\[]")
_HINTS: dict[type, str] = {
    tuple: " (store a list)",
    set: " (store a sorted list)",
    frozenset: " (store a sorted list)",
    bytes: " (decode it to str, or base64-encode it)",
    bytearray: " (decode it to str, or base64-encode it)",
    date: " (store its .isoformat())",
    time_of_day: " (store its .isoformat())",
    Decimal: " (store a str or a float)",
}


class Storage:
    """One plugin's key-value store: JSON values under string keys.

    Values are JSON values (``dict`` with ``str`` keys, ``list``, ``str``,
    ``int``, ``float``, ``bool``, ``None``); anything else is refused with a
    ``TypeError`` naming the key before anything is written. A value read back
    is a fresh copy. Keys are non-empty strings without NUL characters. Keys
    live in ``namespace`` (the plugin id): no other namespace can see them.

    >>> storage = Storage(MemoryStorage(), "my-plugin")
    >>> await storage.set("key", {"data": "value"})
    >>> await storage.get("key")
    {'data': 'value'}
    >>> await storage.get("counter", default=0)
    0
    """

    def __init__(self, backend: StorageBackend, namespace: str) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"storage namespace must be a str, got {type(namespace).__name__}")
        if not namespace:
            raise ValueError("storage namespace must not be empty")
        self.backend = backend
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"Storage(namespace={self.namespace!r}, backend={type(self.backend).__name__})"

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` if it is absent or expired."""
        text = await self.backend.get(self.namespace, check_key(key))
        if text is None:
            return default
        return self._decode(key, text)

    async def set(self, key: str, value: Any, *, ttl: Ttl = None) -> None:
        """Store ``value`` under ``key``, replacing any value and expiry it had.

        ``ttl`` (seconds or a ``timedelta``) makes the key expire: after it, the
        key is absent for every operation.

        >>> await storage.set("session:42", {"user": "ada"}, ttl=timedelta(minutes=30))
        """
        check_key(key)
        text = encode_value(key, value)
        expires_at = None if ttl is None else self._expires_at(key, ttl)
        await self.backend.set(self.namespace, key, text, expires_at)

    async def exists(self, key: str) -> bool:
        """True when ``key`` holds a value (``None`` included) that has not expired."""
        return await self.backend.exists(self.namespace, check_key(key))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        return await self.backend.delete(self.namespace, check_key(key))

    async def list_keys(self, pattern: str = "*") -> list[str]:
        """The keys matching the shell-style ``pattern``, sorted.

        ``*`` matches any run of characters, ``?`` one character, ``[abc]`` /
        ``[!abc]`` one character of (not of) a set, on the whole key. To match
        a literal ``*``, ``?`` or ``[``, put it in brackets: ``"a[*]b"``. Other
        characters, ``%`` and ``_`` included, match only themselves. A pattern
        holding what no key can (a NUL, a lone surrogate) is a ``ValueError``.

        >>> await storage.list_keys("device:*")
        ['device:1', 'device:2']
        """
        check_pattern(pattern)
        wildcard = _WILDCARD.search(pattern)
        prefix = pattern if wildcard is None else pattern[: wildcard.start()]
        keys = await self.backend.keys(self.namespace, prefix)
        if wildcard is None:
            return [key for key in keys if key == pattern]
        if pattern[len(prefix) :] == "*":
            return keys
        match = re.compile(translate(pattern)).match
        return [key for key in keys if match(key)]

    async def clear(self) -> int:
        """Remove every key of this namespace; return how many there were."""
        return await self.backend.clear(self.namespace)

    async def compare_and_set(
        self, key: str, expected: Any, value: Any, *, ttl: Ttl = None
    ) -> bool:
        """Atomically store ``value`` if ``key`` currently holds ``expected``.

        ``expected=None`` means "only if the key is absent" (or expired); use
        :data:`JSON_NULL` to expect a stored ``None``. Values are compared as
        JSON: object key order does not matter, ``1`` equals ``1.0``, ``True``
        is not ``1``. Returns whether the value was stored. ``ttl`` works as in
        :meth:`set`.

        >>> await storage.compare_and_set("leader", None, "replica-1", ttl=30)
        True
        """
        check_key(key)
        text = encode_value(key, value)
        expires_at = None if ttl is None else self._expires_at(key, ttl)
        if expected is None:
            return await self.backend.compare_and_set(self.namespace, key, None, text, expires_at)
        wanted = None if expected is JSON_NULL else expected
        encode_value(key, wanted, "expected value")
        while True:
            current = await self.backend.get(self.namespace, key)
            if current is None or not json_equal(self._decode(key, current), wanted):
                return False
            # The stored text may differ from ours (key order) yet be equal, so
            # swap against the exact text read; if it changed meanwhile, look again.
            if await self.backend.compare_and_set(self.namespace, key, current, text, expires_at):
                return True

    async def increment(self, key: str, amount: int | float = 1, *, ttl: Ttl = None) -> int | float:
        """Atomically add ``amount`` to the number under ``key`` and return the result.

        An absent key counts as 0; ``ttl`` applies only when the key is created
        (an existing key keeps its expiry). A stored value that is not a number
        (booleans are not numbers) raises ``TypeError`` and is left as it was.

        >>> await storage.increment("hits")
        1
        """
        check_key(key)
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise TypeError(
                f"increment amount for storage key {key!r} must be an int or a float, "
                f"got {type(amount).__name__} {amount!r}"
            )
        if not math.isfinite(amount):
            raise ValueError(
                f"increment amount for storage key {key!r} must be finite, got {amount!r}"
            )
        expires_at = None if ttl is None else self._expires_at(key, ttl)
        text = await self.backend.increment(self.namespace, key, amount, expires_at)
        result: int | float = self._decode(key, text)
        return result

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of those ``keys`` that are present, in the order asked.

        Absent and expired keys are left out of the result.

        >>> await storage.get_many(["device:1", "device:9"])
        {'device:1': {'name': 'web-1'}}
        """
        if isinstance(keys, str | bytes):
            raise TypeError(f"get_many takes an iterable of keys, not one key {keys!r}")
        wanted = [check_key(key) for key in keys]
        texts = await self.backend.get_many(self.namespace, wanted)
        return {key: self._decode(key, text) for key, text in texts.items()}

    async def set_many(self, items: Mapping[str, Any], *, ttl: Ttl = None) -> None:
        """Store every item of ``items`` atomically: all of them or, on error, none.

        Every key and value is checked first; one bad item means nothing is written.
        """
        if not isinstance(items, Mapping):
            raise TypeError(f"set_many takes a mapping of key to value, got {type(items).__name__}")
        encoded = {check_key(key): encode_value(key, value) for key, value in items.items()}
        if not encoded:
            return
        expires_at = None if ttl is None else self._expires_at(next(iter(encoded)), ttl)
        await self.backend.set_many(self.namespace, encoded, expires_at)

    async def close(self) -> None:
        """Close the backend (shared by every ``Storage`` on it)."""
        await self.backend.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _expires_at(self, key: str, ttl: float | timedelta) -> float:
        if isinstance(ttl, timedelta):
            seconds = ttl.total_seconds()
        elif isinstance(ttl, int | float) and not isinstance(ttl, bool):
            seconds = float(ttl)
        else:
            raise TypeError(
                f"ttl for storage key {key!r} must be seconds or a timedelta, "
                f"got {type(ttl).__name__} {ttl!r}"
            )
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(
                f"ttl for storage key {key!r} must be a positive, finite duration, got {ttl!r}"
            )
        return self.backend.clock() + seconds

    def _decode(self, key: str, text: str) -> Any:
        try:
            return _DECODE(text)
        except ValueError as exc:
            raise StorageError(
                f"the stored value of key {key!r} in namespace {self.namespace!r} "
                f"is not JSON: {exc}"
            ) from exc


def check_key(key: object) -> str:
    """``key`` if it is a usable storage key, else ``TypeError``/``ValueError`` naming it."""
    if not isinstance(key, str):
        raise TypeError(f"storage key must be a str, got {type(key).__name__} {key!r}")
    if not key:
        raise ValueError("storage key must not be empty")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"storage key {key!r} is not valid Unicode: {exc.reason}") from exc
    if "\x00" in key:
        raise ValueError(f"storage key {key!r} contains a NUL character")
    return key


def check_pattern(pattern: object) -> str:
    """``pattern`` if ``list_keys`` can use it, else ``TypeError``/``ValueError`` naming it.

    The rules of :func:`check_key`: a pattern is compared with keys, so it may
    not hold what no key can (a NUL, a lone surrogate), on any backend.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"list_keys pattern must be a str, got {type(pattern).__name__}")
    if not pattern.isascii():
        try:
            pattern.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"list_keys pattern {pattern!r} is not valid Unicode: it holds a lone "
                f"surrogate at position {exc.start}"
            ) from exc
    if "\x00" in pattern:
        raise ValueError(
            f"list_keys pattern {pattern!r} contains a NUL character, which no key can hold"
        )
    return pattern


def encode_value(key: str, value: Any, role: str = "value") -> str:
    """The JSON text of ``value``; ``TypeError`` naming ``key`` if it is not a JSON value.

    ``role`` names the value in the message ("value", "expected value").

    >>> encode_value("k", {"a": [1, 2.5, None]})
    '{"a":[1,2.5,null]}'
    """
    kind = type(value)
    if not (kind is str or kind is int or kind is bool or value is None):
        try:
            _check_json(value, set())
        except _NotJson as problem:
            where = role.split()[-1] + "".join(reversed(problem.path))
            raise TypeError(
                f"storage {role} for key {key!r} is not JSON: {where} {problem}"
            ) from None
        except RecursionError:
            raise TypeError(f"storage {role} for key {key!r} is nested too deeply") from None
    try:
        return _ENCODER.encode(value)
    except ValueError as exc:  # an int beyond sys.get_int_max_str_digits()
        raise ValueError(
            f"storage {role} for key {key!r} cannot be written as JSON: {exc}"
        ) from None


def json_equal(left: Any, right: Any) -> bool:
    """Whether two JSON values are equal as JSON: object key order aside,
    ``1 == 1.0``, but ``True`` is not ``1``.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return left is None and right is None


class _NotJson(Exception):
    """A part of a value that JSON cannot hold; ``path`` is filled in on the way out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.path: list[str] = []


def _check_json(value: Any, containers: set[int]) -> None:
    if value is None or isinstance(value, str | int):  # bool is an int
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"is {value!r}, which JSON cannot hold")
        return
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str):
                raise _NotJson(
                    f"has the {type(name).__name__} key {name!r}; JSON object keys are str"
                )
        _check_items(value, value.items(), containers)
        return
    if isinstance(value, list):
        _check_items(value, enumerate(value), containers)
        return
    hint = next((text for kind, text in _HINTS.items() if isinstance(value, kind)), "")
    raise _NotJson(f"is a {type(value).__name__}, not a JSON value{hint}")


def _check_items(
    container: object, items: Iterable[tuple[object, Any]], containers: set[int]
) -> None:
    if id(container) in containers:
        raise _NotJson("contains itself")
    containers.add(id(container))
    for index, item in items:
        try:
            _check_json(item, containers)
        except _NotJson as problem:
            problem.path.append(f"[{index!r}]")
            raise
    containers.discard(id(container))
