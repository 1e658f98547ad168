"""``@app.on_event`` handlers and ``create_app(lifespan=...)`` run with the plugin's lifecycle."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI

from ops_center_sdk.testing import create_test_plugin


def on_event(app: FastAPI, event: str) -> Any:
    """``app.on_event`` without its deprecation warning (the form is what is tested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return app.on_event(event)


async def test_startup_handlers_run_after_the_plugin_started_in_registration_order() -> None:
    plugin = create_test_plugin("events-plugin")
    calls: list[str] = []

    @plugin.on_enable
    async def enabled() -> None:
        calls.append("on_enable")

    app = plugin.create_app()

    @on_event(app, "startup")
    async def first() -> None:
        calls.append("first")

    @on_event(app, "startup")
    def second() -> None:  # a sync handler, as Starlette allows
        calls.append("second")

    @on_event(app, "shutdown")
    async def closing() -> None:
        calls.append(f"shutdown (enabled: {plugin.enabled})")

    @plugin.on_disable
    async def disabled() -> None:
        calls.append("on_disable")

    async with app.router.lifespan_context(app):
        assert plugin.enabled
        assert calls == ["on_enable", "first", "second"]
    assert calls[3:] == ["shutdown (enabled: False)", "on_disable"]


async def test_a_failing_startup_handler_fails_the_start_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plugin = create_test_plugin("events-plugin")
    app = plugin.create_app()
    later: list[str] = []

    @on_event(app, "startup")
    async def broken() -> None:
        raise RuntimeError("cannot reach the database")

    @on_event(app, "startup")
    async def never() -> None:
        later.append("ran")

    with (
        caplog.at_level(logging.ERROR, logger="ops_center_sdk.app"),
        pytest.raises(RuntimeError, match="cannot reach the database"),
    ):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - the start fails
    assert not plugin.enabled
    assert later == []
    [record] = [r for r in caplog.records if r.name == "ops_center_sdk.app"]
    assert "broken" in record.getMessage()
    assert record.exc_info is not None  # logged with its traceback


async def test_enable_and_disable_run_them_each_time_the_plugin_runs() -> None:
    plugin = create_test_plugin("events-plugin")
    app = plugin.create_app()
    calls: list[str] = []
    on_event(app, "startup")(lambda: calls.append("startup"))
    on_event(app, "shutdown")(lambda: calls.append("shutdown"))

    await plugin.enable()
    await plugin.enable()  # already enabled: nothing runs again
    await plugin.disable()
    await plugin.enable()
    await plugin.halt()  # the process goes away: shutdown still runs

    assert calls == ["startup", "shutdown", "startup", "shutdown"]


async def test_a_failing_shutdown_handler_does_not_stop_the_others_or_on_disable() -> None:
    plugin = create_test_plugin("events-plugin")
    app = plugin.create_app()
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("flush failed")

    on_event(app, "shutdown")(broken)
    on_event(app, "shutdown")(lambda: calls.append("second"))
    plugin.on_disable(lambda: calls.append("on_disable"))

    await plugin.enable()
    with pytest.raises(ValueError, match="flush failed"):
        await plugin.disable()
    assert calls == ["second", "on_disable"]
    assert not plugin.enabled


async def test_lifespan_runs_after_the_startup_handlers_and_closes_before_shutdown() -> None:
    plugin = create_test_plugin("events-plugin")
    calls: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        calls.append(f"lifespan start ({app.title})")
        yield
        calls.append("lifespan end")

    app = plugin.create_app(lifespan=lifespan)
    on_event(app, "startup")(lambda: calls.append("startup"))
    on_event(app, "shutdown")(lambda: calls.append("shutdown"))

    async with app.router.lifespan_context(app):
        assert calls == ["startup", "lifespan start (events-plugin)"]
    assert calls[2:] == ["lifespan end", "shutdown"]


async def test_managed_app_leaves_them_to_the_hosts_enable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_CENTER_MANAGED", "1")
    plugin = create_test_plugin("events-plugin")
    app = plugin.create_app()
    calls: list[str] = []
    on_event(app, "startup")(lambda: calls.append("startup"))
    on_event(app, "shutdown")(lambda: calls.append("shutdown"))

    async with app.router.lifespan_context(app):
        assert calls == []  # the host has not enabled the plugin yet
        await plugin.enable()  # what POST /_ops/lifecycle/enable does
        assert calls == ["startup"]
    assert calls == ["startup", "shutdown"]  # the process stopped while enabled
