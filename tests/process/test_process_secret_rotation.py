"""A plugin process's protocol secret is new at every start and never stored.

A request captured while one process ran (a signed lifecycle call, say)
verifies for that process only: its successor has another secret, so the
replay is refused even inside the signature's time window, when the
successor's memory of seen delivery ids is empty.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from process_kit import eventually, served_host, write_plugin

from ops_center_sdk.signing import signed_headers

pytestmark = pytest.mark.slow

TARGET = """
from ops_center_sdk import Plugin

plugin = Plugin(id="target", version="1.0.0")


@plugin.route("/ping")
async def ping():
    return {"ok": True}
"""


def stored_files(data_dir: Path) -> list[bytes]:
    """The bytes of the host store's files (the database and its journal)."""
    return [path.read_bytes() for path in data_dir.rglob("ops-center.db*")]


async def test_a_request_signed_for_one_process_is_refused_by_the_next(
    tmp_path: Path, data_dir: Path
) -> None:
    async with served_host(data_dir) as host:
        described = await host.install(
            write_plugin(tmp_path / "target", "target", TARGET), mode="process"
        )
        first = host.runtime("target").process
        assert first is not None
        first_pid, first_secret = described["process"]["pid"], first.secret
        path = "/_ops/lifecycle/disable"
        captured = signed_headers(b"{}", first_secret, method="POST", path=path)

        os.kill(first_pid, signal.SIGKILL)

        def successor_running() -> bool:
            process = host.runtime("target").process
            return process is not None and process.pid != first_pid and process.running

        await eventually(successor_running, "the plugin process to be restarted")
        second = host.runtime("target").process
        assert second is not None
        assert second.secret
        assert second.secret != first_secret

        async with httpx.AsyncClient(base_url=second.url, timeout=10) as direct:
            replayed = await direct.post(path, content=b"{}", headers=captured)
        assert replayed.status_code == 401
        assert replayed.json()["error"]["code"] == "bad_signature"
        plugin = await host.get("/api/v1/plugins/target")
        assert plugin["status"] == "enabled"
        assert (await host.get("/plugins/target/ping")) == {"ok": True}

        record = host.plugins.get("target").record
        assert "secret" not in record
        stored = b"".join(stored_files(data_dir))
        for secret in (first_secret, second.secret):
            assert secret.encode() not in stored
