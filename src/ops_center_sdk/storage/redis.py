"""The Redis backend: for several replicas of a plugin sharing one store.

Layout, for namespace ``ns`` (percent-encoded, so no namespace can forge
another's keys) under the key prefix (``ops:`` by default):

- ``ops:{ns}:k:<key>``, a string: the expiry time, a newline, the JSON text.
  A key with a ``ttl`` also carries a Redis expiry, so Redis reclaims it.
- ``ops:{ns}:i``, a sorted set of the namespace's keys, all with score 0, so
  ``keys(prefix)`` is one ``ZRANGEBYLEX`` over the matching range.

The ``{ns}`` hash tag keeps one namespace's keys in one cluster slot. The
expiry time is stored with the value because visibility follows the
backend's ``clock`` (which tests drive), not the Redis server's clock.
Multi-key operations are Lua scripts or MULTI/EXEC, so they are atomic.

The ``redis`` package is imported when a :class:`RedisStorage` is created,
never when this module is imported.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import StorageError
from .base import Clock, StorageBackend, add_to_json_number, prefix_upper_bound

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Shared by the scripts: the live JSON text of a stored string, or false.
_LIVE_TEXT = """
local function live_text(raw, now)
  if not raw then return false end
  local newline = string.find(raw, '\\n', 1, true)
  local head = string.sub(raw, 1, newline - 1)
  if head ~= '' and tonumber(head) <= now then return false end
  return string.sub(raw, newline + 1)
end
"""

# KEYS: data key, index. ARGV: key, now, '1' if the key must be absent,
# expected text, new stored string, PX milliseconds or ''.
_CAS = (
    _LIVE_TEXT
    + """
local current = live_text(redis.call('GET', KEYS[1]), tonumber(ARGV[2]))
if ARGV[3] == '1' then
  if current then return 0 end
elseif current ~= ARGV[4] then
  return 0
end
if ARGV[6] == '' then
  redis.call('SET', KEYS[1], ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""
)

# KEYS: index. ARGV: range min, range max, data key prefix, now.
# Returns the live keys; drops index entries and data of the dead ones.
_KEYS = (
    _LIVE_TEXT
    + """
local now = tonumber(ARGV[4])
local live = {}
for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])) do
  local data = ARGV[3] .. member
  local raw = redis.call('GET', data)
  if live_text(raw, now) then
    table.insert(live, member)
  else
    redis.call('ZREM', KEYS[1], member)
    if raw then redis.call('DEL', data) end
  end
end
return live
"""
)

# KEYS: index. ARGV: data key prefix, now, batch size.
# Removes one batch of keys; returns {live keys removed, index entries taken}.
_CLEAR_BATCH = (
    _LIVE_TEXT
    + """
local now = tonumber(ARGV[2])
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local removed = 0
for _, member in ipairs(members) do
  local data = ARGV[1] .. member
  if live_text(redis.call('GET', data), now) then removed = removed + 1 end
  redis.call('DEL', data)
end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
return {removed, #members}
"""
)

_CLEAR_BATCH_SIZE = 1000


class RedisStorage(StorageBackend):
    """Stores every namespace in one Redis database, under ``prefix``.

    >>> backend = RedisStorage("redis://127.0.0.1:6379/0")
    """

    shared = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        clock: Clock = time.time,
        prefix: str = "ops:",
    ) -> None:
        super().__init__(clock=clock)
        try:
            import redis.asyncio
            import redis.exceptions
        except ImportError as exc:
            raise StorageError(
                "the Redis storage backend needs the 'redis' package: "
                "pip install 'ops-center-plugin-sdk[redis]'"
            ) from exc
        parts = urlsplit(url)
        database = parts.path.strip("/")
        # redis-py would quietly use database 0 for redis://host/name.
        if parts.scheme in ("redis", "rediss") and database and not database.isdigit():
            raise StorageError(
                f"unusable Redis URL {redact(url)}: the database {database!r} is not a number"
            )
        self.url = url
        self.prefix = prefix
        self._errors = _RedisErrors(redact(url), redis.exceptions.RedisError)
        self._redis = redis.asyncio.Redis
        try:
            self._client = self._redis.from_url(url, decode_responses=True)
        except ValueError as exc:
            raise StorageError(f"unusable Redis URL {redact(url)}: {exc}") from exc
        self._cas = self._client.register_script(_CAS)
        self._keys = self._client.register_script(_KEYS)
        self._clear_batch = self._client.register_script(_CLEAR_BATCH)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._layouts: dict[str, tuple[str, str]] = {}

    def _connection(self) -> Redis:
        """The client for the running event loop.

        redis-py's connections belong to the loop that opened them; a plugin's
        storage outlives loops (one per test, say), so a new loop gets a new client.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                self._client = self._redis.from_url(self.url, decode_responses=True)
            self._loop = loop
        return self._client

    def _layout(self, namespace: str) -> tuple[str, str]:
        """The data key prefix and the index key of ``namespace``."""
        layout = self._layouts.get(namespace)
        if layout is None:
            base = f"{self.prefix}{{{quote(namespace, safe='')}}}:"
            layout = self._layouts[namespace] = (base + "k:", base + "i")
        return layout

    def _pack(self, value: str, expires_at: float | None) -> tuple[str, int | None]:
        """The stored string and its Redis expiry in milliseconds."""
        if expires_at is None:
            return "\n" + value, None
        milliseconds = max(1, math.ceil((expires_at - self.clock()) * 1000))
        return f"{expires_at!r}\n{value}", milliseconds

    def _unpack(self, raw: str | bytes | None, now: float) -> tuple[str, float | None] | None:
        """The live text and expiry time of a stored string, or ``None``."""
        if raw is None:
            return None
        if isinstance(raw, bytes):  # only if the client was built without decode_responses
            raw = raw.decode()
        head, _, text = raw.partition("\n")
        expires_at = float(head) if head else None
        if expires_at is not None and expires_at <= now:
            return None
        return text, expires_at

    def _live_text(self, raw: str | bytes | None) -> str | None:
        entry = self._unpack(raw, self.clock())
        return None if entry is None else entry[0]

    async def get(self, namespace: str, key: str) -> str | None:
        data, _ = self._layout(namespace)
        with self._errors:
            raw = await self._connection().get(data + key)
        return self._live_text(raw)

    async def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        data, _ = self._layout(namespace)
        with self._errors:
            raws = await self._connection().mget([data + key for key in wanted])
        now = self.clock()
        found: dict[str, str] = {}
        for key, raw in zip(wanted, raws, strict=True):
            entry = self._unpack(raw, now)
            if entry is not None:
                found[key] = entry[0]
        return found

    async def set(self, namespace: str, key: str, value: str, expires_at: float | None) -> None:
        await self.set_many(namespace, {key: value}, expires_at)

    async def set_many(
        self, namespace: str, items: Mapping[str, str], expires_at: float | None
    ) -> None:
        if not items:
            return
        data, index = self._layout(namespace)
        with self._errors:
            async with self._connection().pipeline(transaction=True) as pipe:
                for key, value in items.items():
                    raw, milliseconds = self._pack(value, expires_at)
                    pipe.set(data + key, raw, px=milliseconds)
                pipe.zadd(index, dict.fromkeys(items, 0))
                await pipe.execute()

    async def delete(self, namespace: str, key: str) -> bool:
        data, index = self._layout(namespace)
        with self._errors:
            async with self._connection().pipeline(transaction=True) as pipe:
                pipe.get(data + key)
                pipe.delete(data + key)
                pipe.zrem(index, key)
                raw, _, _ = await pipe.execute()
        return self._live_text(raw) is not None

    async def exists(self, namespace: str, key: str) -> bool:
        return await self.get(namespace, key) is not None

    async def keys(self, namespace: str, prefix: str) -> list[str]:
        data, index = self._layout(namespace)
        upper = prefix_upper_bound(prefix)
        low = f"[{prefix}" if prefix else "-"
        high = "+" if upper is None else f"({upper}"
        with self._errors:
            live: list[str] = await self._keys(
                keys=[index], args=[low, high, data, self.clock()], client=self._connection()
            )
        return live

    async def clear(self, namespace: str) -> int:
        data, index = self._layout(namespace)
        removed = 0
        with self._errors:
            while True:
                count, taken = await self._clear_batch(
                    keys=[index],
                    args=[data, self.clock(), _CLEAR_BATCH_SIZE],
                    client=self._connection(),
                )
                removed += int(count)
                if int(taken) < _CLEAR_BATCH_SIZE:
                    return removed

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: str | None,
        value: str,
        expires_at: float | None,
    ) -> bool:
        data, index = self._layout(namespace)
        raw, milliseconds = self._pack(value, expires_at)
        args: list[Any] = [
            key,
            self.clock(),
            "1" if expected is None else "0",
            "" if expected is None else expected,
            raw,
            "" if milliseconds is None else milliseconds,
        ]
        with self._errors:
            done = await self._cas(keys=[data + key, index], args=args, client=self._connection())
        return bool(done)

    async def increment(
        self, namespace: str, key: str, amount: int | float, expires_at: float | None
    ) -> str:
        # Optimistic: read, add in Python (exact ints, same rules as every
        # backend), then compare-and-set; retry if another writer got there first.
        data, _ = self._layout(namespace)
        while True:
            with self._errors:
                raw = await self._connection().get(data + key)
            entry = self._unpack(raw, self.clock())
            current, keep = (None, expires_at) if entry is None else entry
            text = add_to_json_number(current, amount, key)
            if await self.compare_and_set(namespace, key, current, text, keep):
                return text

    async def close(self) -> None:
        # A client of a loop other than this one cannot be closed from here.
        if self._loop is None or self._loop is asyncio.get_running_loop():
            with self._errors:
                await self._client.aclose()


class _RedisErrors:
    """Turns redis-py errors into :class:`StorageError` naming the server."""

    def __init__(self, where: str, error_type: type[Exception]) -> None:
        self.where = where
        self.error_type = error_type

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, self.error_type):
            raise StorageError(f"Redis storage {self.where}: {error}") from error


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs.

    >>> redact("redis://:secret@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
