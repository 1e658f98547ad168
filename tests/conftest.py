"""Fixtures shared by every test folder (this folder is on sys.path for their kits)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_kit import fresh_redis_prefix


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis, deleted after the test."""
    yield from fresh_redis_prefix()
