"""Bad input to and from plugin processes: refused clearly, logged, others unaffected."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from process_kit import ServedHost, error_of, served_host, write_plugin

from ops_center_sdk.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signed_headers

pytestmark = pytest.mark.slow

#: Counts what it handles; its filter is always too slow; with a file named
#: "garbage" beside it, something in front of it answers events with HTML.
FLAKY = """
import asyncio
from pathlib import Path

from ops_center_sdk import Plugin

plugin = Plugin(id="flaky", version="1.0.0")
GARBAGE = Path(__file__).with_name("garbage")


@plugin.hook("device.created")
async def created(device_id, device_data):
    await plugin.storage.increment(f"created:{device_id}")


@plugin.hook("flaky.ping")
async def ping(n, **extra):
    await plugin.storage.increment(f"ping:{n}")


@plugin.filter_hook("device.data.process")
async def slow(data):
    await asyncio.sleep(1)
    data["flaky"] = True
    return data


@plugin.route("/counts")
async def counts():
    return await plugin.storage.get_many(await plugin.storage.list_keys("*:*"))


inner = plugin.create_app()


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/_ops/events" and GARBAGE.exists():
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<html>oops</html>"})
        return
    await inner(scope, receive, send)
"""

WITNESS = """
from ops_center_sdk import Plugin

plugin = Plugin(id="witness", version="1.0.0")
seen = []


@plugin.hook("device.created")
async def created(device_id):
    seen.append(device_id)


@plugin.filter_hook("device.data.process", priority=5)
async def mark(data):
    data["witness"] = True
    return data
"""


def by_event(dead: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["event_id"]: item for item in dead["items"]}


async def test_refused_oversized_and_garbled_deliveries_become_dead_letters_to_replay(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ops_center_sdk.host")
    flaky = write_plugin(tmp_path / "flaky", "flaky", FLAKY)
    async with served_host(data_dir) as host:
        await host.install(write_plugin(tmp_path / "witness", "witness", WITNESS))
        await host.install(flaky, mode="process")

        # a filter past its deadline: the data goes on without it, and that is logged
        created = await host.http.post("/api/v1/devices", json={"id": "d1", "name": "Web"})
        assert created.status_code == 201
        assert created.json()["witness"] is True
        assert "flaky" not in created.json()
        assert "filter device.data.process failed: no answer within 0.3 s" in caplog.text

        bus = host.app.state.bus
        refused = await bus.emit("device.created", {"device_id": "d2"})  # no device_data
        too_big = await bus.emit("flaky.ping", {"n": 1, "blob": "x" * (1024 * 1024 + 1)})
        await host.settle()
        (flaky / "garbage").touch()
        garbled = await host.http.post(
            "/api/v1/events", json={"name": "flaky.ping", "payload": {"n": 2}}
        )
        await host.settle()
        (flaky / "garbage").unlink()

        dead = by_event(await host.get("/api/v1/plugins/flaky/dead-letters"))
        assert set(dead) == {refused["id"], too_big["id"], garbled.json()["id"]}
        assert (dead[refused["id"]]["reason"], dead[refused["id"]]["status_code"]) == (
            "refused",
            422,
        )
        assert "device_data" in dead[refused["id"]]["last_error"]
        assert dead[refused["id"]]["attempts"] == 1
        assert dead[too_big["id"]]["reason"] == "too_large"
        assert "over the plugin's limit" in dead[too_big["id"]]["last_error"]
        failed = dead[garbled.json()["id"]]
        assert (failed["reason"], failed["attempts"]) == ("failed", 3)
        assert "unexpected body" in failed["last_error"]
        assert "moved to the dead letters (failed, 3 attempts)" in caplog.text

        # everyone else went on: the other plugin and this one's good events
        counts = await host.get("/plugins/flaky/counts")
        assert counts == {"created:d1": 1}
        assert host.plugins.get("witness").loaded.module.seen == ["d1"]  # type: ignore[union-attr]

        # the operator replays the garbled one, now that the plugin answers properly
        replay = await host.http.post(
            f"/api/v1/plugins/flaky/dead-letters/{failed['event_id']}/replay"
        )
        assert replay.status_code == 202
        await host.settle()
        assert (await host.get("/plugins/flaky/counts"))["ping:2"] == 1
        assert failed["event_id"] not in by_event(
            await host.get("/api/v1/plugins/flaky/dead-letters")
        )
        again = await host.http.post(
            f"/api/v1/plugins/flaky/dead-letters/{failed['event_id']}/replay"
        )
        assert (again.status_code, error_of(again)["code"]) == (404, "not_found")
        dropped = await host.http.delete(f"/api/v1/plugins/flaky/dead-letters/{too_big['id']}")
        assert dropped.status_code == 204

        await _signature_is_checked_end_to_end(host)


async def _signature_is_checked_end_to_end(host: ServedHost) -> None:
    """Straight to the plugin's port: only deliveries signed with its secret run."""
    plugin = await host.get("/api/v1/plugins/flaky")
    url = plugin["process"]["url"] + "/_ops/events"
    process = host.runtime("flaky").process
    assert process is not None
    secret = process.secret
    event = {"id": "evt-direct", "name": "flaky.ping", "occurred_at": "", "payload": {"n": 9}}
    body = json.dumps(event).encode()
    changed = json.dumps({**event, "payload": {"n": 8}}).encode()
    path = "/_ops/events"

    def signed(content: bytes, key: str = secret, **extra: int) -> dict[str, str]:
        return signed_headers(content, key, method="POST", path=path, **extra)

    async with httpx.AsyncClient(timeout=5) as raw:
        unsigned = await raw.post(url, content=body)
        stale = await raw.post(
            url, content=body, headers=signed(body, timestamp=int(time.time()) - 600)
        )
        tampered = await raw.post(url, content=changed, headers=signed(body))
        wrong_key = await raw.post(url, content=body, headers=signed(body, "not-the-secret"))
        other_path = signed_headers(body, secret, method="POST", path="/_ops/lifecycle/enable")
        elsewhere = await raw.post(url, content=body, headers=other_path)
        protocol_1 = {SIGNATURE_HEADER: _protocol_1_signature(body, secret), DELIVERY_HEADER: "d1"}
        old_scheme = await raw.post(url, content=body, headers=protocol_1)
        for refused in (unsigned, stale, tampered, wrong_key, elsewhere, old_scheme):
            assert (refused.status_code, error_of(refused)["code"]) == (401, "bad_signature")
        assert "ping:9" not in await host.get("/plugins/flaky/counts")
        headers = signed(body)
        accepted = await raw.post(url, content=body, headers=headers)
        assert accepted.json()["status"] == "processed"
        replayed = await raw.post(url, content=body, headers=headers)
        assert (replayed.status_code, error_of(replayed)["code"]) == (401, "bad_signature")
        assert "already received" in error_of(replayed)["message"]
    assert (await host.get("/plugins/flaky/counts"))["ping:9"] == 1


def _protocol_1_signature(body: bytes, secret: str) -> str:
    """What protocol 1 sent: an HMAC over "<t>." + body only."""
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


BROKEN_IMPORT = """
from ops_center_sdk import Plugin

plugin = Plugin(id="broken", version="1.0.0")
raise RuntimeError("half written")
"""

FAILING_INSTALL = """
from ops_center_sdk import Plugin

plugin = Plugin(id="failing", version="1.0.0")


@plugin.on_install
async def on_install():
    raise ValueError("no database")
"""


async def test_a_plugin_process_that_cannot_start_or_install_is_refused_clearly(
    tmp_path: Path, data_dir: Path
) -> None:
    async with served_host(data_dir) as host:
        broken = write_plugin(tmp_path / "broken", "broken", BROKEN_IMPORT)
        response = await host.http.post(
            "/api/v1/plugins", json={"path": str(broken), "mode": "process"}
        )
        error = error_of(response)
        assert (response.status_code, error["code"]) == (422, "plugin_import_error")
        assert error["message"].startswith(f"{broken / 'main.py'}:5: importing the plugin failed")
        assert "RuntimeError: half written" in error["message"]
        assert (error["details"][0]["file"], error["details"][0]["line"]) == (
            str(broken / "main.py"),
            5,
        )

        failing = write_plugin(tmp_path / "failing", "failing", FAILING_INSTALL)
        response = await host.http.post(
            "/api/v1/plugins", json={"path": str(failing), "mode": "process"}
        )
        error = error_of(response)
        assert (response.status_code, error["code"]) == (422, "plugin_failed")
        assert "install failed" in error["message"]
        assert "ValueError: no database" in error["message"]

        bad_mode = await host.http.post(
            "/api/v1/plugins", json={"path": str(failing), "mode": "thread"}
        )
        assert (bad_mode.status_code, error_of(bad_mode)["details"][0]["field"]) == (
            422,
            "body.mode",
        )
        assert (await host.get("/api/v1/plugins"))["total"] == 0
        assert (await host.http.get("/api/v1/health")).status_code == 200
