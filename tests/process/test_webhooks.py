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
from fastapi import FastAPI, HTTPException, Request
from process_kit import ADMIN_KEY, FAST_WEBHOOKS, free_port, loopback_socket, served
from starlette.types import Receive, Scope, Send

from ops_center_sdk.host.outbox import RetryPolicy
from ops_center_sdk.host.rest.common import new_record
from ops_center_sdk.host.server import create_server_app
from ops_center_sdk.host.webhook_sender import WebhookSettings
from ops_center_sdk.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SeenDeliveries,
    SignatureError,
    request_path,
    sign_delivery,
    signed_headers,
    verify_webhook,
)


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
        assert len(set(first_tries)) == 1  # a retry carries the same event id...
        tries = [headers["x-ops-center-delivery"] for headers, _ in got[:3]]
        assert len(set(tries)) == 3  # ...under a new delivery id, so it is no replay
        seen = SeenDeliveries()
        events_seen = [
            verify_webhook(body, headers, "secret-flaky", path="/flaky", seen=seen)
            for headers, body in got
        ][2:]
        assert [(e["name"], e["payload"]["device_id"]) for e in events_seen] == [
            ("device.created", "d1"),
            ("device.created", "d2"),
            ("device.deleted", "d1"),
        ]
        # a deletion carries the device as it was
        assert events_seen[-1]["payload"]["device_data"]["name"] == "d1"
        headers, body = got[-1]
        assert headers["x-ops-center-event"] == "device.deleted"
        with pytest.raises(SignatureError, match="already received"):
            verify_webhook(body, headers, "secret-flaky", path="/flaky", seen=seen)
        with pytest.raises(SignatureError, match="does not match"):
            verify_webhook(body, headers, "another-secret", path="/flaky")
        with pytest.raises(SignatureError, match="does not match"):
            verify_webhook(body, headers, "secret-flaky", path="/alerts")
        assert receiver.received("/alerts") == []  # no alert was created
        assert receiver.received("/off") == []  # inactive

        log = await deliveries(http, flaky)
        assert log["total"] == 3
        newest, _, oldest = log["items"]
        assert all(attempt.startswith(oldest["id"] + ".") for attempt in tries)
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
    now = 1_700_000_010
    signed = signed_headers(
        body, "s3cret-key", method="POST", path="/in?tenant=7", timestamp=now - 10
    )
    signature, delivery = signed[SIGNATURE_HEADER], signed[DELIVERY_HEADER]
    for headers in (
        signed,
        {key.lower(): value for key, value in signed.items()},
        httpx.Headers({key.upper(): value for key, value in signed.items()}),
    ):
        event = verify_webhook(body, headers, "s3cret-key", path="/in?tenant=7", now=now)
        assert event["id"] == "evt-1"

    def refused(message: str, content: bytes = body, **change: Any) -> None:
        arguments: dict[str, Any] = {"path": "/in?tenant=7", "now": now, **change}
        headers = arguments.pop("headers", signed)
        with pytest.raises(SignatureError, match=message):
            verify_webhook(content, headers, "s3cret-key", **arguments)

    refused("Signature header is missing", headers={DELIVERY_HEADER: delivery})
    refused("Delivery header is missing", headers={SIGNATURE_HEADER: signature})
    refused("away from now", now=now + 1000)
    refused("does not match", content=body + b" ")
    refused("does not match", path="/in")
    refused("does not match", method="PUT")
    seen = SeenDeliveries()
    verify_webhook(body, signed, "s3cret-key", path="/in?tenant=7", now=now, seen=seen)
    refused("already received", seen=seen)
    text = b"not json"
    headers = signed_headers(text, "s3cret-key", method="POST", path="/in")
    with pytest.raises(SignatureError, match="not JSON"):
        verify_webhook(text, headers, "s3cret-key", path="/in")


def test_a_protocol_1_webhook_signature_is_refused() -> None:
    body = b'{"id": "evt-1"}'
    headers = {SIGNATURE_HEADER: sign_delivery(body, "k", method="POST", path="/", delivery_id="d")}
    headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].replace("v2=", "v1=")
    headers[DELIVERY_HEADER] = "d"
    with pytest.raises(SignatureError, match="only v1 signatures"):
        verify_webhook(body, headers, "k", path="/")


async def test_a_fastapi_receiver_checks_deliveries_with_request_path() -> None:
    receiver = FastAPI()
    seen = SeenDeliveries()

    @receiver.post("/hooks/ops")
    async def receive(request: Request) -> dict[str, Any]:
        try:
            event = verify_webhook(
                await request.body(),
                request.headers,
                "k",
                path=request_path(request.scope),
                seen=seen,
            )
        except SignatureError as exc:
            raise HTTPException(401, str(exc)) from None
        return {"got": event["id"]}

    body = b'{"id": "evt-7"}'
    headers = signed_headers(body, "k", method="POST", path="/hooks/ops?x=%20y")
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        first = await client.post("/hooks/ops?x=%20y", content=body, headers=headers)
        assert first.json() == {"got": "evt-7"}
        again = await client.post("/hooks/ops?x=%20y", content=body, headers=headers)
        assert again.status_code == 401
        moved = signed_headers(body, "k", method="POST", path="/hooks/ops?x=%20y")
        elsewhere = await client.post("/hooks/ops", content=body, headers=moved)
        assert elsewhere.status_code == 401
