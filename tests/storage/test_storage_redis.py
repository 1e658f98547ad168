"""What only the Redis backend promises: Redis expiry, index upkeep, clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import redis.asyncio

from ops_center_sdk.errors import StorageError
from ops_center_sdk.storage import RedisStorage, Storage, open_backend

if TYPE_CHECKING:
    from conftest import FakeClock


@pytest.fixture
async def raw(redis_url: str, redis_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client on the test Redis, to look at what the backend wrote."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_ttl_becomes_a_redis_expiry(
    redis_url: str, redis_prefix: str, raw: redis.asyncio.Redis
) -> None:
    storage = Storage(RedisStorage(redis_url, prefix=redis_prefix), "plugin-a")
    await storage.set("session", "s", ttl=60)
    await storage.set("forever", "f")

    assert 0 < await raw.pttl(f"{redis_prefix}{{plugin-a}}:k:session") <= 60_000
    assert await raw.pttl(f"{redis_prefix}{{plugin-a}}:k:forever") == -1
    assert await raw.zrange(f"{redis_prefix}{{plugin-a}}:i", 0, -1) == ["forever", "session"]
    await storage.close()


async def test_listing_drops_expired_keys_from_the_index(
    redis_url: str, redis_prefix: str, raw: redis.asyncio.Redis, clock: FakeClock
) -> None:
    storage = Storage(RedisStorage(redis_url, prefix=redis_prefix, clock=clock), "plugin-a")
    await storage.set_many({"a:1": 1, "a:2": 2}, ttl=5)
    await storage.set("a:3", 3)
    clock.advance(5)

    assert await storage.list_keys("a:*") == ["a:3"]

    assert await raw.zrange(f"{redis_prefix}{{plugin-a}}:i", 0, -1) == ["a:3"]
    assert not await raw.exists(f"{redis_prefix}{{plugin-a}}:k:a:1")
    await storage.close()


async def test_clear_leaves_nothing_behind(
    redis_url: str, redis_prefix: str, raw: redis.asyncio.Redis
) -> None:
    storage = Storage(RedisStorage(redis_url, prefix=redis_prefix), "plugin-a")
    other = Storage(storage.backend, "plugin-b")
    await storage.set_many({f"k{i}": i for i in range(2100)})
    await other.set("mine", 1)

    assert await storage.clear() == 2100

    left = [key async for key in raw.scan_iter(match=redis_prefix + "*")]
    assert sorted(left) == [f"{redis_prefix}{{plugin-b}}:i", f"{redis_prefix}{{plugin-b}}:k:mine"]
    await storage.close()


async def test_unreachable_server_is_a_storage_error_without_the_password() -> None:
    storage = Storage(open_backend("redis://:hunter2@127.0.0.1:1/0"), "plugin-a")
    with pytest.raises(StorageError) as error:
        await storage.get("k")
    message = str(error.value)
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message
    await storage.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://127.0.0.1:6379/not-a-db", "'not-a-db' is not a number"),
        ("redis://127.0.0.1:notaport/0", "Port"),
        ("http://127.0.0.1:6379/0", "scheme"),
    ],
)
def test_bad_url_is_a_storage_error(url: str, words: str) -> None:
    with pytest.raises(StorageError, match="unusable Redis URL") as error:
        RedisStorage(url)
    assert words in str(error.value)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the first loop's socket, left behind
def test_one_storage_serves_successive_event_loops(redis_url: str, redis_prefix: str) -> None:
    """A plugin's storage outlives event loops (pytest makes one per test)."""
    import asyncio
    import gc

    storage = Storage(RedisStorage(redis_url, prefix=redis_prefix), "plugin-a")

    async def count() -> int | float:
        return await storage.increment("runs")

    assert asyncio.run(count()) == 1
    assert asyncio.run(count()) == 2
    asyncio.run(storage.close())
    gc.collect()  # drop the first loop's socket while its warning is filtered
