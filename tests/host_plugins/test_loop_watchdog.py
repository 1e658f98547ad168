"""The loop-lag watchdog on a clock the test drives: what a block is, and whose it is."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from plugin_kit import RunningHost, running_host, write_plugin

from ops_center_sdk.host.loop_watchdog import (
    BLOCK_ENV,
    LoopBlock,
    LoopWatchdog,
    StackFrame,
    blame,
    threshold_from_env,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watchdog_on(clock: FakeClock) -> tuple[LoopWatchdog, list[LoopBlock]]:
    blocks: list[LoopBlock] = []
    watchdog = LoopWatchdog(
        blocks.append, threshold=0.1, interval=0.02, clock=clock, wall_clock=lambda: 1e9
    )
    return watchdog, blocks


def test_a_late_beat_reports_the_block_with_the_stack_seen_during_it() -> None:
    clock = FakeClock()
    watchdog, blocks = watchdog_on(clock)
    watchdog.beat()
    clock.now += 0.05
    watchdog.sample()  # 50 ms old: not stuck yet, nothing taken
    watchdog.beat()  # 30 ms late: under the threshold
    assert blocks == []

    clock.now += 0.15
    watchdog.sample()  # stuck: the stack of the loop's thread (here, this test) is taken
    clock.now += 0.10
    watchdog.beat()
    (block,) = blocks
    assert block.ms == pytest.approx(230)  # 250 ms since the last beat, due 20 ms after it
    assert block.at == 1e9
    assert block.stack[0].qualname == "LoopWatchdog.sample"
    names = [frame.qualname for frame in block.stack]
    assert "test_a_late_beat_reports_the_block_with_the_stack_seen_during_it" in names


def test_a_sample_of_an_earlier_stall_is_not_given_to_a_later_block() -> None:
    clock = FakeClock()
    watchdog, blocks = watchdog_on(clock)
    watchdog.beat()
    clock.now += 0.11
    watchdog.sample()
    clock.now += 0.005
    watchdog.beat()  # 95 ms late: no block, the sample goes stale
    clock.now += 0.3
    watchdog.beat()  # a block the thread never saw
    (block,) = blocks
    assert block.stack == ()


def test_blame_names_the_outermost_frame_in_a_plugins_folder(tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    stack = (
        StackFrame("/usr/lib/python3.11/time.py", "sleep", 1),
        StackFrame(str(folder / "helpers.py"), "pause", 3),
        StackFrame(str(folder / "main.py"), "on_created", 12),
        StackFrame("/site-packages/ops_center_sdk/hooks/dispatch.py", "_run_actions", 336),
        StackFrame(str(tmp_path / "slower" / "main.py"), "not_this_one", 1),
    )
    assert blame(stack, {"slow": folder}) == ("slow", stack[2])
    assert blame(stack, {"other": tmp_path / "other"}) is None
    assert blame((), {"slow": folder}) is None


def test_the_threshold_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    assert threshold_from_env() == 0.1
    monkeypatch.setenv(BLOCK_ENV, "250")
    assert threshold_from_env() == 0.25
    monkeypatch.setenv(BLOCK_ENV, "0")
    assert threshold_from_env() is None
    for bad in ("soon", "-5", "nan", "inf"):
        monkeypatch.setenv(BLOCK_ENV, bad)
        with caplog.at_level(logging.WARNING, logger="ops_center_sdk.host.watchdog"):
            assert threshold_from_env() == 0.1
        assert f"{BLOCK_ENV}={bad!r} is not a number of milliseconds" in caplog.text


SLEEPER = """
import time

from ops_center_sdk import Plugin

plugin = Plugin(id="sleeper", version="1.0.0")


@plugin.hook("device.created")
async def on_created(device_id):
    time.sleep(0.3)
"""


async def test_the_host_uses_the_threshold_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BLOCK_ENV, "250")
    async with running_host(tmp_path / "data") as host:
        await install_and_block(host, tmp_path)
        logs = (await host.http.get("/api/v1/plugins/sleeper/logs")).json()["items"]
        (record,) = logs
        assert "(limit 250 ms)" in record["message"]
        assert "handler 'on_created'" in record["message"]


async def install_and_block(host: RunningHost, tmp_path: Path) -> None:
    response = await host.install(write_plugin(tmp_path / "sleeper", "sleeper", SLEEPER))
    assert response.status_code == 201, response.text
    await host.http.post("/api/v1/devices", json={"id": "d1", "name": "d1"})
    await host.settle()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        health = (await host.http.get("/api/v1/plugins/sleeper/health")).json()
        if health["loop_blocked"]["count"]:
            return
        assert loop.time() < deadline, "the block was never reported"
        await asyncio.sleep(0.02)
