"""The test Redis: where it is and a fresh key prefix per test.

``OPS_CENTER_TEST_REDIS_URL`` (default 127.0.0.1:6379 db 0) names it;
``OPS_CENTER_TEST_NO_REDIS=1`` leaves the Redis tests out. Unreachable
otherwise, the tests fail with a clear message rather than skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("OPS_CENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NO_REDIS = os.environ.get("OPS_CENTER_TEST_NO_REDIS") == "1"


def fresh_redis_prefix() -> Iterator[str]:
    """A key prefix on the test Redis no other test uses; its keys are deleted after."""
    if NO_REDIS:
        pytest.skip("OPS_CENTER_TEST_NO_REDIS=1: Redis tests left out")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        pytest.fail(
            f"Redis at {REDIS_URL} is unreachable ({exc}). Start Redis there, point "
            "OPS_CENTER_TEST_REDIS_URL at one, or set OPS_CENTER_TEST_NO_REDIS=1 to "
            "leave out the Redis tests."
        )
    prefix = f"ops-test-{uuid.uuid4().hex}:"
    yield prefix
    stale = list(client.scan_iter(match=prefix + "*", count=1000))
    if stale:
        client.delete(*stale)
    client.close()
