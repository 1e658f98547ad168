"""Lifecycle phases: handlers take no arguments; failures are reported, not swallowed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ops_center_sdk.context import active_event
from ops_center_sdk.errors import HookError
from ops_center_sdk.hooks import LIFECYCLE_PHASES, DispatchError, HookRegistry

pytestmark = pytest.mark.filterwarnings("error")


def test_the_phases() -> None:
    assert LIFECYCLE_PHASES == ("install", "enable", "disable", "uninstall")


async def test_each_phase_runs_its_own_handlers_in_registration_order(
    hooks: HookRegistry,
) -> None:
    calls: list[tuple[str, str | None]] = []

    for phase in LIFECYCLE_PHASES:
        for n in (1, 2):

            async def handler(phase: str = phase, n: int = n) -> None:
                calls.append((f"{phase}-{n}", active_event()))

            hooks.add_lifecycle(phase, handler)

    def sync_handler() -> None:
        calls.append(("enable-sync", active_event()))

    hooks.add_lifecycle("enable", sync_handler)

    report = await hooks.run_lifecycle("enable")
    assert report.ok
    assert report.event == "lifecycle.enable"
    assert report.handlers_run == 3
    assert calls == [
        ("enable-1", "lifecycle.enable"),
        ("enable-2", "lifecycle.enable"),
        ("enable-sync", "lifecycle.enable"),
    ]
    assert [h.hook for h in hooks.lifecycle("install")] == ["install", "install"]


async def test_a_phase_without_handlers(hooks: HookRegistry) -> None:
    report = await hooks.run_lifecycle("uninstall")
    assert report.ok
    assert report.handlers_run == 0


async def test_failures_are_logged_reported_and_raisable(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def migrate() -> None:
        raise RuntimeError("schema migration failed")

    async def seed() -> None:
        ran.append("seed")

    async def register_webhook() -> None:
        raise ConnectionError("host unreachable")

    failing = hooks.add_lifecycle("install", migrate)
    hooks.add_lifecycle("install", seed)
    hooks.add_lifecycle("install", register_webhook)
    report = await hooks.run_lifecycle("install")
    assert ran == ["seed"]  # every handler runs
    assert not report.ok
    assert [type(f.exception) for f in report.failures] == [RuntimeError, ConnectionError]
    messages = [r.getMessage() for r in hook_log.records]
    assert all(r.levelno == logging.ERROR for r in hook_log.records)
    assert f"lifecycle handler '{failing.name}' of plugin 'test-plugin' failed" in messages[0]
    assert "'lifecycle.install'" in messages[0]
    with pytest.raises(DispatchError) as caught:
        report.raise_for_errors()
    assert "2 of 3 handlers of 'lifecycle.install' failed" in str(caught.value)


async def test_one_failure_raises_its_own_exception(hooks: HookRegistry) -> None:
    async def enable() -> None:
        raise PermissionError("no API key")

    hooks.add_lifecycle("enable", enable)
    report = await hooks.run_lifecycle("enable")
    with pytest.raises(PermissionError, match="no API key"):
        report.raise_for_errors()


async def test_lifecycle_timeout(hooks: HookRegistry) -> None:
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    hooks.add_lifecycle("disable", hangs, timeout=0.05)
    report = await hooks.run_lifecycle("disable")
    assert report.failures[0].timed_out


async def test_unknown_phase_on_run(hooks: HookRegistry) -> None:
    with pytest.raises(HookError, match=r"unknown lifecycle phase 'enabel'; did you mean 'enable'"):
        await hooks.run_lifecycle("enabel")
