"""Fixtures shared by every test folder (this folder is on sys.path for their kits)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from redis_kit import fresh_redis_prefix

# The dev host keeps its admin key in the user's configuration folder: the
# suite, and every dev process it starts, keeps it in a folder of its own.
_CONFIG_DIR = tempfile.TemporaryDirectory(prefix="ops-center-test-config-")
os.environ["OPS_CENTER_CONFIG_DIR"] = _CONFIG_DIR.name


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis, deleted after the test."""
    yield from fresh_redis_prefix()
