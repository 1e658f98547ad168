"""Fixtures for the hook tests: a registry of one plugin, and its SDK log records."""

from __future__ import annotations

import logging

import pytest

from ops_center_sdk.hooks import HookRegistry

OWNER = "test-plugin"
HOOKS_LOGGER = "ops_center_sdk.hooks"


@pytest.fixture
def hooks() -> HookRegistry:
    return HookRegistry(OWNER, default_timeout=5.0)


@pytest.fixture
def hook_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` capturing the SDK's hook records (ERROR and up)."""
    caplog.set_level(logging.ERROR, logger=HOOKS_LOGGER)
    return caplog
