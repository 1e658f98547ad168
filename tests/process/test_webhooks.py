"""Webhooks: events delivered to the registered URLs, signed, retried, logged; and checked."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from process_kit import ADMIN_KEY, FAST_WEBHOOKS, free_port, loopback_socket, served
from starlette.types import Receive, Scope, Send

from ops_center_sdk.host.outbox import RetryPolicy
from ops_center_sdk.host.rest.common import new_record
from ops_center_sdk.host.server import create_server_app
from ops_center_sdk.host.webhook_sender import WebhookSettings
from ops_center_sdk.signing import SIGNATURE_HEADER, SignatureError, sign_delivery, verify_webhook


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1: answers by path, records every request."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((path, headers, body))
        self.calls[path] += 1
        status = {"/always-500": 500, "/gone": 410}.get(path, 200)
        if path == "/flaky" and self.calls[path] <= 2:
            status = 503
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no"})

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for p, headers, body in self.requests if p == path]


@asynccontextmanager
async def host_app(data_dir: Path, settings: WebhookSettings) -> AsyncIterator[FastAPI]:
    app = create_server_app(data_dir=data_dir, admin_key=ADMIN_KEY, webhook_settings=settings)
    async with app.router.lifespan_context(app):
        yield app


def admin(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ops.test/api/v1",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )


async def settle(app: FastAPI) -> None:
    await app.state.bus.drain()
    await app.state.webhooks.drain()


async def hook(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/webhooks", json=body)
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["id"]
    return webhook_id


async def deliveries(http: httpx.AsyncClient, webhook_id: str, query: str = "") -> Any:
    response = await http.get(f"/webhooks/{webhook_id}/deliveries{query}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
async def test_webhooks_get_signed_events_in_order_with_retries_and_a_delivery_log(
    data_dir: Path,
) -> None:
    receiver = Receiver()
    sock, url = loopback_socket()
    closed = f"http://127.0.0.1:{free_port()}/nobody"
    async with (
        served(receiver, sock, lifespan="off"),
        host_app(data_dir, FAST_WEBHOOKS) as app,
        admin(app) as http,
    ):
        events = ["device.created", "device.deleted"]
        flaky = await hook(http, url=f"{url}/flaky", events=events, secret="secret-flaky")
        alerts = await hook(http, url=f"{url}/alerts", events=["alert.created"])
        failing = await hook(http, url=f"{url}/always-500", events=["device.created"])
        gone = await hook(http, url=f"{url}/gone", events=["device.deleted"])
        unreachable = await hook(http, url=closed, events=["device.deleted"])
        await hook(http, url=f"{url}/off", events=["device.created"], active=False)

        for device_id in ("d1", "d2"):
            created = await http.post("/devices", json={"id": device_id, "name": device_id})
            assert created.status_code == 201
        assert (await http.delete("/devices/d1")).status_code == 204
        await settle(app)

        # the flaky receiver: every event, in order, signed; the first one after two 503s
        got = receiver.received("/flaky")
        assert len(got) == 5
        first_tries = [headers["x-ops-center-event-id"] for headers, _ in got[:3]]
        assert len(set(first_tries)) == 1  # a retry carries the same event id
        events_seen = [verify_webhook(body, headers, "secret-flaky") for headers, body in got[2:]]
        assert [(e["name"], e["payload"]["device_id"]) for e in events_seen] == [
            ("device.created", "d1"),
            ("device.created", "d2"),
            ("device.deleted", "d1"),
        ]
        # a deletion carries the device as it was
        assert events_seen[-1]["payload"]["device_data"]["name"] == "d1"
        headers, body = got[-1]
        assert headers["x-ops-center-event"] == "device.deleted"
        with pytest.raises(SignatureError, match="does not match"):
            verify_webhook(body, headers, "another-secret")
        assert receiver.received("/alerts") == []  # no alert was created
        assert receiver.received("/off") == []  # inactive

        log = await deliveries(http, flaky)
        assert log["total"] == 3
        newest, _, oldest = log["items"]
        assert newest["event"] == "device.deleted"
        assert (oldest["status"], oldest["attempts"], oldest["status_code"]) == (
            "delivered",
            3,
            200,
        )
        assert oldest["last_error"].startswith("503")
        assert oldest["delivered_at"] is not None
        assert "envelope" not in oldest

        failed = await deliveries(http, failing, "?status=failed")
        assert failed["total"] == 2
        assert {(d["attempts"], d["status_code"]) for d in failed["items"]} == {(3, 500)}
        [refused] = (await deliveries(http, gone))["items"]
        assert (refused["status"], refused["attempts"], refused["status_code"]) == (
            "failed",
            1,
            410,
        )
        [lost] = (await deliveries(http, unreachable))["items"]
        assert (lost["status"], lost["status_code"]) == ("failed", None)
        assert "ConnectError" in lost["last_error"]
        assert (await deliveries(http, alerts))["total"] == 0
        missing = await http.get("/webhooks/nope/deliveries")
        assert missing.status_code == 404


@pytest.mark.slow
async def test_a_webhook_gets_only_events_that_occurred_after_it_was_registered(
    data_dir: Path,
) -> None:
    receiver = Receiver()
    sock, url = loopback_socket()
    async with (
        served(receiver, sock, lifespan="off"),
        host_app(data_dir, FAST_WEBHOOKS) as app,
        admin(app) as http,
    ):
        # The sender sees each event a little after it was emitted. Make that
        # window certain: the event is queued, and before the sender has run
        # a webhook for it is registered (a moment after the event occurred).
        bus, store = app.state.bus, app.state.store
        before = await bus.emit("device.created", {"device_id": "d0", "device_data": {}})
        registered = datetime.fromisoformat(before["occurred_at"]) + timedelta(milliseconds=1)
        record = new_record("late", {"url": f"{url}/late", "events": ["device.created"]})
        record.update(secret="secret-late", active=True, created_at=registered.isoformat())
        store.insert("webhooks", record)
        await settle(app)
        assert receiver.received("/late") == []
        assert (await deliveries(http, "late"))["total"] == 0

        assert (await http.post("/devices", json={"id": "d1", "name": "Web"})).status_code == 201
        await settle(app)
        [(_, body)] = receiver.received("/late")
        assert json.loads(body)["payload"]["device_id"] == "d1"


@pytest.mark.slow
async def test_a_delivery_pending_at_shutdown_is_sent_after_the_restart(data_dir: Path) -> None:
    port = free_port()
    patient = WebhookSettings(
        timeout=2.0, retry=RetryPolicy(max_attempts=1000, base=0.02, maximum=0.05, jitter=0)
    )
    async with host_app(data_dir, patient) as app, admin(app) as http:
        webhook = await hook(http, url=f"http://127.0.0.1:{port}/in", events=["device.created"])
        await http.post("/devices", json={"id": "d1", "name": "Web"})
        await app.state.bus.drain()
        [pending] = (await deliveries(http, webhook))["items"]
        assert pending["status"] == "pending"

    receiver = Receiver()
    sock, _ = loopback_socket(port)  # the receiver is up now
    async with (
        served(receiver, sock, lifespan="off"),
        host_app(data_dir, FAST_WEBHOOKS) as app,
        admin(app) as http,
    ):
        await settle(app)
        [delivered] = (await deliveries(http, webhook))["items"]
        assert delivered["status"] == "delivered"
        assert delivered["attempts"] > 1  # the failed tries before the restart count
        [(_, body)] = receiver.received("/in")
        assert json.loads(body)["payload"]["device_id"] == "d1"


def test_verify_webhook_reads_any_headers_mapping_and_refuses_bad_deliveries() -> None:
    body = json.dumps({"id": "evt-1", "name": "device.created", "payload": {}}).encode()
    signature = sign_delivery(body, "s3cret-key", timestamp=1_700_000_000)
    for headers in (
        {SIGNATURE_HEADER: signature},
        {"x-ops-center-signature": signature},
        httpx.Headers({"X-OPS-CENTER-SIGNATURE": signature}),
    ):
        event = verify_webhook(body, headers, "s3cret-key", now=1_700_000_010)
        assert event["id"] == "evt-1"
    with pytest.raises(SignatureError, match="missing"):
        verify_webhook(body, {}, "s3cret-key", now=1_700_000_010)
    with pytest.raises(SignatureError, match="away from now"):
        verify_webhook(body, {SIGNATURE_HEADER: signature}, "s3cret-key", now=1_700_001_000)
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(body + b" ", {SIGNATURE_HEADER: signature}, "s3cret-key", now=1_700_000_010)
    text = b"not json"
    with pytest.raises(SignatureError, match="not JSON"):
        verify_webhook(text, {SIGNATURE_HEADER: sign_delivery(text, "s3cret-key")}, "s3cret-key")
