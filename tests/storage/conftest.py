"""Fixtures for the storage tests: every backend, and a clock the test moves.

The Redis backend's tests need Redis (``OPS_CENTER_TEST_REDIS_URL``, default
127.0.0.1:6379 db 0). They fail when it is unreachable, unless
``OPS_CENTER_TEST_NO_REDIS=1`` says to leave them out. Each test works under
a random key prefix and deletes it afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ops_center_sdk.storage import (
    MemoryStorage,
    RedisStorage,
    SqliteStorage,
    Storage,
    StorageBackend,
)
from redis_kit import REDIS_URL


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BackendOpener:
    """Opens the backend under test; every call opens the same store again."""

    def __init__(self, kind: str, tmp_path: Path, clock: FakeClock, redis_prefix: str) -> None:
        self.kind = kind
        self.path = tmp_path / "store" / "storage.db"
        self.clock = clock
        self.redis_prefix = redis_prefix
        self.opened: list[StorageBackend] = []
        self._memory: MemoryStorage | None = None

    def __call__(self) -> StorageBackend:
        backend: StorageBackend
        if self.kind == "memory":
            if self._memory is None:
                self._memory = MemoryStorage(clock=self.clock)
            backend = self._memory
        elif self.kind == "sqlite":
            backend = SqliteStorage(self.path, clock=self.clock)
        else:
            backend = RedisStorage(REDIS_URL, clock=self.clock, prefix=self.redis_prefix)
        self.opened.append(backend)
        return backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


async def _opener(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BackendOpener]:
    kind: str = request.param
    prefix = request.getfixturevalue("redis_prefix") if kind == "redis" else ""
    opener = BackendOpener(kind, tmp_path, clock, prefix)
    yield opener
    for backend in opener.opened:
        await backend.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BackendOpener]:
    """The backend kind under test, as an opener that can reopen the same store."""
    async for opener in _opener(request, tmp_path, clock):
        yield opener


@pytest.fixture(params=["sqlite", "redis"])
async def open_durable_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BackendOpener]:
    """Like ``open_store``, for the backends whose data outlives the process."""
    async for opener in _opener(request, tmp_path, clock):
        yield opener


@pytest.fixture
def backend(open_store: BackendOpener) -> StorageBackend:
    return open_store()


@pytest.fixture
def storage(backend: StorageBackend) -> Storage:
    return Storage(backend, "plugin-a")
