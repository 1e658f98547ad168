"""Fixtures of the out-of-process tests: every plugin process started is stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops_center_sdk.host.plugin_process import PluginProcess


@pytest.fixture(autouse=True)
def plugin_pids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """PIDs of the plugin processes started in the test (and any a test adds), killed after."""
    pids: list[int] = []
    start = PluginProcess.start

    async def recorded_start(self: PluginProcess) -> None:
        await start(self)
        if self.pid is not None:
            pids.append(self.pid)

    monkeypatch.setattr(PluginProcess, "start", recorded_start)
    yield pids
    for pid in pids:
        if is_plugin_server(pid):
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, os.WNOHANG)  # ours: reaped; another's child: its parent reaps


def is_plugin_server(pid: int) -> bool:
    """Whether ``pid`` is (still) a plugin server process, not a PID reused since."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"ops_center_sdk.plugin_server" in command


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
